"""The figure registry and its one CLI verb: every figure is one entry, reachable by name, with its inputs
checked in one line."""

import pandas as pd
import pytest

from structae import models
from structae.cli import main
from structae.errors import UserError
from structae.figures import EVERY_PAPER, curves, of_paper, registry

PAPERS = {"cae", "iodine", "maganet", "swwae"}


def test_every_figure_has_one_scope_and_a_caption():
    for name, figure in registry().items():
        assert bool(figure.models) != bool(figure.paper), name
        assert set(figure.models) <= set(models.names()), name
        assert figure.paper in PAPERS | {EVERY_PAPER, None}, name
        assert len(figure.caption) > 40 and "out" in figure.options(), name


@pytest.mark.parametrize("args, message", [
    (["nope"], "no figure 'nope'; the figures are: "),
    (["slots"], "figure 'slots' needs --checkpoint, --data"),
    (["iterations", "--metrics", "m.json", "--checkpoint", "c.pt"], "figure 'iterations' takes no --checkpoint"),
    (["recombination", "--checkpoints", "a.pt", "b.pt", "--labels", "a", "--data", "d.h5"],
     "2 files but 1 labels; pass one label per file"),
])
def test_figure_verb_checks_its_inputs_in_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "figure.png"
    assert main(["figure", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def _log(path, rows):
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_validation_curves_plot_val_scores_against_training_minutes(tmp_path, monkeypatch):
    plotted = {}

    def recording_panels(frame, columns, x, xlabel, title, out):
        plotted.update(columns=columns, x=list(frame[x]), xlabel=xlabel)

    rows = [{"step": 10, "loss": 0.5, "train_minutes": 1.0, "val_ari_fg": None},
            {"step": 20, "loss": 0.4, "train_minutes": 2.0, "val_ari_fg": 0.6},
            {"step": 30, "loss": 0.3, "train_minutes": 3.0, "val_ari_fg": None}]
    logs = [_log(tmp_path / "cae_a/seed0/train_log.csv", rows)]
    monkeypatch.setattr(curves, "_panels", recording_panels)
    curves.validation_curves(logs, tmp_path / "v.png")
    assert plotted == {"columns": ["val_ari_fg"], "x": [2.0], "xlabel": "training minutes"}  # validated rows only
    curves.training_curves(logs, tmp_path / "t.png")
    assert plotted["columns"] == ["loss"] and plotted["xlabel"] == "step"  # neither val_* nor minutes is a loss


def test_validation_curves_are_drawn_and_need_val_columns(tmp_path):
    rows = [{"step": s, "loss": 1 / s, "train_minutes": s / 10, "val_ari_fg": s / 40} for s in (10, 20, 30)]
    logs = [_log(tmp_path / f"cae_{name}/seed{seed}/train_log.csv", rows) for name in "ab" for seed in (0, 1)]
    curves.validation_curves(logs, tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000
    plain = [_log(tmp_path / "plain/seed0/train_log.csv", [{"step": 10, "loss": 1.0, "train_minutes": 1.0}])]
    with pytest.raises(UserError, match="set train.validate_every"):
        curves.validation_curves(plain, tmp_path / "none.png")


def test_only_papers_that_validate_get_validation_curves():
    assert "validation_curves" not in of_paper("swwae") and "training_curves" in of_paper("swwae")
    assert "validation_curves" in of_paper("cae", validated=True)
