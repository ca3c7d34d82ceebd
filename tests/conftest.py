import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "config.tiny.yaml"
WORKFLOW_FILES = ["Snakefile", "rules", "report", "envs", "profiles"]


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A copy of the workflow with the tiny config as its config.yaml, in a temporary directory."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copy(TINY_CONFIG, tmp_path / "config.yaml")
    return tmp_path
