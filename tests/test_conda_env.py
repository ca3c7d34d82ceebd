"""envs/structae.yaml as far as this machine (no conda, no conda-forge) can check it: conda-forge only, every
package pinned inside pyproject.toml's ranges, and the package installed by the post-deploy script from the
workflow's directory, which survives Snakemake copying the env file under .snakemake/conda/."""

import os
import re
import shutil
import stat
import subprocess
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import REPO

ENV = REPO / "envs" / "structae.yaml"
POST_DEPLOY = REPO / "envs" / "structae.post-deploy.sh"
CONDA_NAMES = {"pytorch": "torch", "matplotlib-base": "matplotlib"}  # conda-forge name -> PyPI name
PIN = re.compile(r"^(?P<name>[a-z0-9_.-]+) =(?P<version>[0-9][0-9a-z.]*)$")


def pins() -> dict[str, str]:
    found = {}
    for dependency in yaml.safe_load(ENV.read_text())["dependencies"]:
        assert isinstance(dependency, str), f"{dependency}: no pip section; conda-forge packages only"
        match = PIN.match(dependency)
        assert match, f"{dependency!r} is not pinned as 'name =version'"
        found[CONDA_NAMES.get(match["name"], match["name"])] = match["version"]
    return found


def test_conda_forge_only_with_nodefaults():
    assert yaml.safe_load(ENV.read_text())["channels"] == ["conda-forge", "nodefaults"]


def test_every_package_is_pinned_inside_pyprojects_ranges():
    pinned = pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in map(Requirement, project["dependencies"]):
        name = requirement.name.lower()
        assert name in pinned, f"{name} (pyproject.toml) is missing from envs/structae.yaml"
        assert requirement.specifier.contains(Version(pinned[name])), f"{name} ={pinned[name]}: not {requirement}"
    python = project["requires-python"]
    assert Version(pinned["python"]) in Requirement(f"python{python}").specifier


def _run_post_deploy(cwd, tmp_path):
    """The script as Snakemake runs it: its copy beside the environment, from the working directory, with
    the environment's python first on PATH (a stand-in that records its arguments)."""
    bin_dir = tmp_path / "env" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho "$PWD $@" > {tmp_path}/pip_call\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    copy = tmp_path / "env.post-deploy.sh"  # Snakemake copies it to <env>.post-deploy.sh
    shutil.copy(POST_DEPLOY, copy)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(copy)], cwd=cwd, env=env, capture_output=True, text=True)


def test_post_deploy_installs_this_checkout_editable_from_the_workflow_directory(tmp_path):
    run = _run_post_deploy(REPO, tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "pip_call").read_text().split() == [
        str(REPO), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--editable", "."]


def test_post_deploy_elsewhere_is_one_line(tmp_path):
    run = _run_post_deploy(tmp_path, tmp_path)
    assert run.returncode == 1 and not (tmp_path / "pip_call").exists()
    assert run.stderr.count("\n") == 1 and "run snakemake from the repository's root" in run.stderr
