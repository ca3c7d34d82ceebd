"""The README's promises that can drift: its rule graph and its two commands."""

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import rulegraph  # noqa: E402


def test_readme_rule_graph_is_the_workflows_own():
    assert rulegraph.block(rulegraph.rulegraph(REPO)) in (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme.split("```")[1]
    assert (REPO / ".ci" / "run").read_text().strip().endswith("exec make test")
