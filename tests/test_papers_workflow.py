"""Every paper's target on tiny data and two training steps per experiment: the per-paper rules (evaluation
on another split, to-Diff, embeddings), tables and every figure the papers define, made through Snakemake."""

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_workflow, jobs, snakemake

PAPERS_CONFIG = REPO / "tests" / "config.papers.yaml"
EXPECTED_FIGURES = {
    "cae": ["training_curves.png", "validation_curves.png", "phase_cae_two_shapes.png"],
    "iodine": ["training_curves.png", "slots_iodine_multi_dsprites.png", "slot_traversal_iodine_multi_dsprites.png",
               "iterations.png"],
    "maganet": ["training_curves.png", "recombination.png", "identity_maganet_to_element.png",
                "traversal_vae_to_range.png", "traversal_animation_maganet_to_range.gif",
                *(f"umap_{factor}.png" for factor in ("shape", "posX", "posY", "scale", "orientation"))],
    "swwae": ["training_curves.png", "reconstructions.png", "whatwhere_swwae_semi_soft_n10.png",
              "error_vs_labels.png"],
}


@pytest.mark.slow
def test_every_paper_target_on_tiny_data(tmp_path):
    papers_dir = copy_workflow(tmp_path, PAPERS_CONFIG)
    run = snakemake(papers_dir, "cae", "iodine", "maganet", "swwae", scale=None)
    assert run.returncode == 0, run.stderr[-3000:]
    for paper, figures in EXPECTED_FIGURES.items():
        for name in figures:
            assert (papers_dir / "results/figures" / paper / name).stat().st_size > 1000, (paper, name)
        table = pd.read_csv(papers_dir / f"results/tables/{paper}.csv")
        assert table["value"].notna().any()
    # to-Diff: the to_range runs are scored on to_element's test rows, against their to_element twin.
    element = json.loads((papers_dir / "results/metrics/maganet_to_element.json").read_text())
    ranged = json.loads((papers_dir / "results/metrics/maganet_to_range.json").read_text())
    assert ranged["n_images"] == element["n_images"]
    assert "bce_to_diff" in ranged["seeds"]["0"] and "bce_to_diff" not in element["seeds"]["0"]
    # The paper's number stands beside ours in IODINE's table.
    assert "ari_fg (paper)" in (papers_dir / "results/tables/iodine.md").read_text()
    assert snakemake(papers_dir, "-n", "cae", "iodine", "maganet", "swwae", scale=None).stdout.count("rule ") == 0

    # Evaluation settings are evaluation: changing the CAE's k-means restarts re-evaluates, never retrains.
    config = yaml.safe_load((papers_dir / "config.yaml").read_text())
    config["experiments"]["cae_two_shapes"]["evaluate"] = {"model": {"kmeans_restarts": 5}}
    (papers_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert jobs(snakemake(papers_dir, "-n", "cae", scale=None)) == {"evaluate": 1, "table_metrics": 1, "cae": 1}
    report = snakemake(papers_dir, "--report", "report.html", scale=None)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (papers_dir / "report.html").read_text(errors="replace")
    assert "the group action" in html and "phase" in html  # captions from the figure registry
