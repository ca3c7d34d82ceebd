"""Metrics files to tables: means and stds over seeds, and the paper's numbers beside ours."""

import json

import numpy as np
import pandas as pd

from structae import tables


def _metrics(path, experiment, seeds, reported=None, fresh_test_seed=None):
    result = {"experiment": experiment, "paper": "iodine", "model": "iodine", "dataset": "d", "split": None,
              "fresh_test_seed": fresh_test_seed, "n_images": 10, "reported": reported or {}, "seeds": seeds}
    path.write_text(json.dumps(result))
    return path


def test_table_means_stds_and_reported_numbers(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, 3)
    first = _metrics(tmp_path / "a.json", "a", {str(s): {"ari_fg": v, "mse": 2 * v} for s, v in enumerate(values)},
                     reported={"ari_fg": 0.767})
    second = _metrics(tmp_path / "b.json", "b", {"0": {"ari_fg": 0.5, "mse": 0.1}})
    frame = tables.write_table([first, second], tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.html")
    ari = frame[(frame.experiment == "a") & (frame.metric == "ari_fg")]
    assert ari["mean"].iloc[0] == np.mean(values)
    assert ari["std"].iloc[0] == np.std(values, ddof=1)
    assert ari["reported"].eq(0.767).all()
    assert frame[frame.experiment == "b"]["std"].isna().all()  # one seed: no spread
    assert pd.read_csv(tmp_path / "t.csv").shape == frame.shape
    header, _, row_a, row_b = (tmp_path / "t.md").read_text().splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns.index("ari_fg (paper)") == columns.index("ari_fg") + 1
    assert row_a.split("|")[columns.index("ari_fg (paper)") + 1].strip() == "0.767"
    assert row_b.split("|")[columns.index("ari_fg (paper)") + 1].strip() == "–"
    page = (tmp_path / "t.html").read_text()  # the same cells, as the report shows them
    assert page.count("<tr>") == 3 and "<th>ari_fg (paper)</th>" in page and "<td>0.767</td>" in page


def test_a_fresh_test_split_is_its_own_row_and_never_mixed_into_the_test_numbers(tmp_path):
    own = _metrics(tmp_path / "a.json", "a", {"0": {"ari_fg": 0.9}, "1": {"ari_fg": 0.7}}, reported={"ari_fg": 0.8})
    fresh = _metrics(tmp_path / "fresh.json", "a", {"0": {"ari_fg": 0.1}, "1": {"ari_fg": 0.3}},
                     reported={"ari_fg": 0.8}, fresh_test_seed=1)
    frame = tables.write_table([fresh, own], tmp_path / "t.csv", tmp_path / "t.md")
    assert tables.own_test(frame)["mean"].round(6).tolist() == [0.8, 0.8]  # the fresh 0.1, 0.3 stay out
    assert frame[frame["fresh_test_seed"] == 1]["mean"].round(6).tolist() == [0.2, 0.2]
    _, _, row_own, row_fresh = (tmp_path / "t.md").read_text().splitlines()  # the test split's row first
    assert row_own.startswith("| a | 2 | 0.80 ± 0.14 | 0.8 |")
    assert row_fresh.startswith("| a, fresh test scenes (generator seed 1) | 2 | 0.20 ± 0.14 | – |")
    again = tables.read_tidy(tmp_path / "t.csv")  # what the claims pages read back
    assert tables.own_test(again)["value"].tolist() == [0.9, 0.7]
