"""The figure registry and its one CLI verb: every figure is one entry, reachable by name, with its inputs
checked in one line."""

import pytest

from structae import models
from structae.cli import main
from structae.figures import EVERY_PAPER, registry

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
