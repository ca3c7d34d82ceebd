"""Every paper's target on tiny data and two training steps per experiment: the per-paper rules (evaluation
on another split, to-Diff, embeddings), tables and every figure the papers define, made through Snakemake."""

import base64
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_workflow, jobs, snakemake

sys.path.insert(0, str(REPO / "scripts"))
import readme_claims  # noqa: E402

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


@pytest.fixture(scope="module")
def papers_dir(tmp_path_factory):
    """Every paper's target made from the papers' tiny config, once for this module."""
    papers_dir = copy_workflow(tmp_path_factory.mktemp("papers"), PAPERS_CONFIG)
    run = snakemake(papers_dir, "cae", "iodine", "maganet", "swwae", scale=None)
    assert run.returncode == 0, run.stderr[-3000:]
    return papers_dir


@pytest.mark.slow
def test_every_paper_target_on_tiny_data(papers_dir):
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
    assert jobs(snakemake(papers_dir, "-n", "cae", scale=None)) == {"evaluate": 1, "table_metrics": 1,
                                                                     "claims_page": 1, "cae": 1}


def claims_rows(markdown: str) -> list[list[str]]:
    """A Markdown table's rows (header included), as lists of cells."""
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")]
            for line in markdown.splitlines() if line.startswith("| ")]


@pytest.mark.slow
def test_the_readme_claims_table_is_the_workflows(papers_dir):
    """The README's results table is the claims table the workflow renders (rule claims_table): the same
    columns and, row by row, the same paper, claim and their number; only our numbers and verdicts differ
    with the run. A claim added to structae.claims without re-rendering the README fails here."""
    run = snakemake(papers_dir, "results/report/claims.md", scale=None)
    assert run.returncode == 0, run.stderr[-3000:]
    rendered = claims_rows((papers_dir / "results/report/claims.md").read_text())
    readme = (REPO / "README.md").read_text()
    marked = readme.split(readme_claims.START, 1)[1].split(readme_claims.END, 1)[0]
    assert "Numbers from " in marked  # which run they come from
    ours = claims_rows(marked)
    assert ours[0] == rendered[0]
    assert [row[:3] for row in ours[1:]] == [row[:3] for row in rendered[1:]]
    # the tiny config trains some claimed experiments (SWWAE's runs there have 10 labels, its claims 100 and 1000)
    assert {row[0] for row in rendered[1:] if row[4] != "not measured"} == {"cae", "iodine", "maganet"}


@pytest.mark.slow
def test_the_report_is_the_reproductions_front_page(papers_dir, tmp_path):
    """Rendered in Debian's headless Chromium: the description page, each paper's table shown inline (HTML), and
    a claims page per paper with our numbers, verdicts and figures."""
    report = snakemake(papers_dir, "--report", "report.html", scale=None)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (papers_dir / "report.html").read_text(errors="replace")
    assert "the group action" in html and "phase" in html  # captions from the figure registry
    items = report_items(html)
    browser = chromium()

    front = visible_text(render(browser, papers_dir / "report.html"))
    assert "structae regenerates the tables and figures" in front and "claims page" in front
    assert all(paper in front for paper in ("cae", "iodine", "maganet", "swwae"))
    for paper in ("cae", "iodine", "maganet", "swwae"):
        table = items[f"results/tables/{paper}.html"]
        assert table["mime_type"] == "text/html"  # shown in the report, not offered as a download
        page = tmp_path / f"{paper}.html"
        page.write_bytes(base64.b64decode(table["data_uri"].split("base64,", 1)[1]))
        assert "<th>experiment</th>" in render(browser, page)

        claims = items[f"results/report/{paper}_claims.html"]
        page.write_bytes(base64.b64decode(claims["data_uri"].split("base64,", 1)[1]))
        dom = render(browser, page)
        assert dom.count('<tr class="claim">') >= 3, paper
        assert dom.count('class="verdict"') == dom.count('<tr class="claim">')
        assert "data:image/png;base64," in dom  # the figure beside its claim
    shot = render(browser, papers_dir / "report.html", screenshot=tmp_path / "front.png")
    assert len(set(shot)) > 100  # a rendered page, not a blank one


def chromium() -> str:
    """Debian's headless Chromium (scripts/chromium.sh installs it); skipped, with the reason, where it cannot
    be installed."""
    script = REPO / "scripts" / "chromium.sh"
    found = subprocess.run(["bash", str(script), "path"], capture_output=True, text=True)
    if found.returncode != 0:
        install = subprocess.run(["bash", str(script), "install"], capture_output=True, text=True)
        if install.returncode != 0:
            pytest.skip(f"headless Chromium could not be installed here: {install.stderr.strip().splitlines()[-1:]}")
        found = subprocess.run(["bash", str(script), "path"], capture_output=True, text=True)
    return found.stdout.strip()


def render(browser: str, page, screenshot=None):
    """The page's DOM after its scripts ran (or, with `screenshot`, the PNG's bytes)."""
    args = [browser, "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--window-size=1280,1600"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    run = subprocess.run([*args, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return screenshot.read_bytes() if screenshot else run.stdout


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def report_items(html: str) -> dict:
    """The report's results, by path, as Snakemake embeds them (name, mime_type, data_uri, ...)."""
    items = {}
    for match in re.finditer(r'"(results/[^"]+)": (\{"name": .*?"data_uri": "[^"]*"\})', html):
        items[match[1]] = json.loads(match[2])
    return items
