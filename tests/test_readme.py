"""The documentation's promises that can drift: the rule graph, the two commands, links between pages."""

import re
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import rulegraph  # noqa: E402


def test_documented_rule_graph_is_the_workflows_own():
    assert rulegraph.block(rulegraph.rulegraph(REPO)) in (REPO / rulegraph.PAGE).read_text()


def test_links_between_pages_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]  # the logs in docs/log/ too
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme.split("```")[1]
    assert (REPO / ".ci" / "run").read_text().strip().endswith("exec make test")


def test_the_readme_is_one_screen_per_topic():
    """Issue 40: at most 150 lines, and no table cell longer than about 25 words (link targets not counted)."""
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    for line in lines:
        if line.startswith("|"):
            for cell in line.strip("|").split(" | "):
                words = re.sub(r"\]\([^)]*\)", "]", cell).split()
                assert len(words) <= 25, cell
