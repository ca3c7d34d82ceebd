"""Reading config files strictly: plain UTF-8 YAML, each key once, no templates.

The CLI reads config files with `read`; the workflow calls `check_files` before Snakemake reads
config.yaml (rules/config_files.smk). What is refused, each with one line naming the file and the fix:
- bytes that are not UTF-8 (Snakemake would stop with a decoding traceback);
- a key given twice in one mapping (YAML keeps the last one silently);
- `__use_yte__`: Snakemake would evaluate the file as a YTE template, that is, run its Python.
  A file passed to Snakemake with --configfile is read by Snakemake before any project code runs,
  so there this check comes after the fact: config files are code for Snakemake (README).
The expanded size of what a file holds (YAML anchors can make it exponential) is bounded by
config.validate_config, which every path goes through.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from structae.errors import UserError

TEMPLATE_KEY = "__use_yte__"


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int):
        super().__init__(key, line)
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated within one mapping (merge keys `<<` may be overridden)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool | None):
                    continue  # SafeLoader itself refuses unhashable keys
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read(path: str | Path) -> dict:
    """The mapping a config file holds; UserError for anything the module docstring lists."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found; pass an existing file with --config")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UserError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[err.start]:02x}); "
                        "save the file as UTF-8 (names must be lower_snake_case ASCII)") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as dup:
        raise UserError(f"{path}: line {dup.line}: key {dup.key!r} appears twice in one mapping and YAML would "
                        "keep only the last; remove one of them") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{at}; fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    if TEMPLATE_KEY in data:
        raise UserError(f"{path}: {TEMPLATE_KEY} makes Snakemake run Python templates from the config; structae "
                        f"configs are plain YAML: remove {TEMPLATE_KEY} and write the values out")
    return data


def check_files(paths: Iterable[str | Path]) -> None:
    """Read every existing file in `paths` strictly (what the workflow does before Snakemake reads them)."""
    for path in paths:
        if Path(path).is_file():
            read(path)
