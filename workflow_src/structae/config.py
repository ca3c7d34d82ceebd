"""Loading and validating config.yaml: the JSON schema, defaults, and cross-references.

Used by the workflow (rules/common.smk) when it loads and by the CLI when it runs alone, so both
stop on the same mistakes with the same one-line message.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from structae import config_files, models, names
from structae.errors import UserError

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"
# Bounds on what a config may expand to. YAML anchors can nest exponentially (a few lines holding gigabytes)
# and every entry travels on a command line (--spec), where one argument is limited to 128 KiB.
MAX_VALUES = 100_000
MAX_ENTRY_BYTES = 64 * 1024
SECTIONS = ("datasets", "splits", "experiments")


@cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _with_defaults(validator_class):
    """A validator that also fills each property's `default` (jsonschema's documented recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 20.0 as an integer; Python code downstream (range(), shapes) does not.
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    _with_defaults(jsonschema.Draft202012Validator),
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


def _key_path(path: Iterable) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key, what is wrong and what is allowed."""
    where = _key_path(error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "additionalProperties" and value is False:
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        return f"{prefix}{unknown[0]}: unknown key; allowed here: {', '.join(allowed)}"
    if kind == "required":
        missing = [key for key in value if key not in error.instance]
        return f"{where}: missing key '{missing[0]}'"
    if kind == "enum":
        return f"{where}: {error.instance!r} is not allowed; choose one of: {', '.join(map(str, value))}"
    if kind == "type" and value == "integer" and isinstance(error.instance, float) and error.instance.is_integer():
        return f"{where}: {error.instance!r} must be an integer; write {int(error.instance)}"
    if kind == "type":
        wanted = " or ".join(value) if isinstance(value, list) else value
        return f"{where}: {error.instance!r} is not of type {wanted}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return f"{where}: {error.instance!r} is out of range; it must be {sign} {value}"
    if kind == "minProperties":
        return f"{where}: must not be empty"
    return f"{where}: {error.message}"


def _check_values(instance: object, source: str, prefix: tuple = ()) -> None:
    """Every number finite, and at most MAX_VALUES values in all, counted as expanded (one walk, which stops
    as soon as the bound is passed, so an anchor bomb costs nothing)."""
    stack, count = [(prefix, instance)], 0
    while stack:
        path, value = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise UserError(f"{source}: the config expands to more than {MAX_VALUES:,} values (nested YAML anchors?); "
                            "write the settings out plainly")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{source}: {_key_path(path)}: {value!r} is not a finite number; write a finite value")
        if isinstance(value, Mapping):
            stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend(((*path, index), item) for index, item in enumerate(value))


def _check_entry_size(section: str, name: str, entry: dict, source: str) -> None:
    size = len(json.dumps(entry))
    if size > MAX_ENTRY_BYTES:
        raise UserError(f"{source}: {section}.{name}: {size:,} bytes of settings, more than the {MAX_ENTRY_BYTES:,} "
                        "an entry may hold (it is passed to its jobs on the command line); keep entries small")


def _check_entries(config: dict, source: str) -> None:
    """Names that become paths or wildcards follow structae.names (one rule for the workflow and the CLI), and
    every entry fits on a command line."""
    for section in SECTIONS:
        for name, entry in (config.get(section) or {}).items():
            _named(f"{section} entry", name, source)
            if section == "datasets" and isinstance(entry, Mapping):
                for split in entry.get("sizes") or {}:
                    _named(f"datasets.{name}.sizes split", split, source)
            _check_entry_size(section, name, entry, source)


def _named(what: str, name: object, source: str) -> None:
    try:
        names.check(what, name)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None


def _validate(instance: dict, subschema: dict, source: str, prefix: tuple = ()) -> None:
    _check_values(instance, source, prefix)
    errors = list(_Validator(subschema).iter_errors(instance))
    if errors:
        deepest = max(errors, key=lambda e: len(e.absolute_path))
        deepest.path.extendleft(reversed(prefix))
        raise UserError(f"{source}: {_describe(deepest)}")


def validate_config(config: dict, source: str = "config") -> dict:
    """Check `config` against the schema and its cross-references; fill defaults in place.

    Raises UserError with one line naming `source`, the key and what is allowed.
    """
    _validate(config, schema(), source)
    _check_entries(config, source)
    _check_references(config, source)
    return config


def validate_entry(section: str, name: str, entry: dict, source: str = "--spec") -> dict:
    """Check one entry of `datasets`, `splits` or `experiments` (as the workflow passes it to the CLI)."""
    _named(f"{section} entry", name, source)
    if not isinstance(entry, dict):
        raise UserError(f"{source}: {section}.{name}: expected a mapping of settings")
    _validate(entry, schema()["properties"][section]["additionalProperties"], source, (section, name))
    return entry


def _check_references(config: dict, source: str) -> None:
    datasets, splits = config["datasets"], config.get("splits", {})
    for name, split in splits.items():
        if split["dataset"] not in datasets:
            raise UserError(f"{source}: splits.{name}.dataset: '{split['dataset']}' is not a dataset; "
                            f"known: {', '.join(sorted(datasets))}")
    for name, exp in config["experiments"].items():
        if exp["dataset"] not in datasets:
            raise UserError(f"{source}: experiments.{name}.dataset: '{exp['dataset']}' is not a dataset; "
                            f"known: {', '.join(sorted(datasets))}")
        split = exp.get("split")
        if split is not None and splits.get(split, {}).get("dataset") != exp["dataset"]:
            raise UserError(f"{source}: experiments.{name}.split: '{split}' is not a split of "
                            f"'{exp['dataset']}'; add it under splits: or set split: null")
        sizes = datasets[exp["dataset"]]["sizes"]
        if split is None and not {"train", "test"} <= set(sizes):
            raise UserError(f"{source}: experiments.{name}: dataset '{exp['dataset']}' has no train and test "
                            f"splits (its sizes: {', '.join(sizes)}); add them or set a recombination split")
        if exp["model"] not in models.names():
            raise UserError(f"{source}: experiments.{name}.model: '{exp['model']}' is not registered; "
                            f"choose one of: {', '.join(models.names())}")
        _check_validation(source, name, exp, sizes)
        _check_evaluation(source, name, exp, config["experiments"], splits)
        _check_fresh_test(source, name, exp, datasets[exp["dataset"]])


def _check_validation(source: str, name: str, exp: dict, sizes: dict) -> None:
    """Validation during training scores the dataset's val split, at steps that are logged."""
    settings = exp["train"]
    every = settings["validate_every"]
    if not every:
        return
    if exp.get("split") is not None or "val" not in sizes:
        raise UserError(f"{source}: experiments.{name}.train.validate_every needs a val split of dataset "
                        f"'{exp['dataset']}' (and no recombination split); add val to its sizes or set it to 0")
    if every % settings["log_every"]:
        raise UserError(f"{source}: experiments.{name}.train.validate_every {every} is not a multiple of "
                        f"log_every {settings['log_every']}; choose a multiple")


def _check_evaluation(source: str, name: str, exp: dict, experiments: dict, splits: dict) -> None:
    """An evaluation split must be a split of the experiment's dataset, and a compared experiment must train
    the same model on the same dataset with the same seeds (its checkpoints are matched seed by seed)."""
    settings = exp.get("evaluate", {})
    split, other = settings.get("split"), settings.get("compare_with")
    if split is not None and splits.get(split, {}).get("dataset") != exp["dataset"]:
        raise UserError(f"{source}: experiments.{name}.evaluate.split: '{split}' is not a split of "
                        f"'{exp['dataset']}'; name one under splits: or set it to null")
    if split is not None and exp.get("split") is None:
        raise UserError(f"{source}: experiments.{name}.evaluate.split needs the experiment to train on a split "
                        "too (split:); without one it is scored on the dataset's test file")
    if other is None:
        return
    if other not in experiments or other == name:
        raise UserError(f"{source}: experiments.{name}.evaluate.compare_with: '{other}' is not another experiment")
    mismatch = [key for key in ("model", "dataset", "seeds") if experiments[other].get(key) != exp.get(key)]
    if mismatch:
        raise UserError(f"{source}: experiments.{name}.evaluate.compare_with: '{other}' differs in "
                        f"{', '.join(mismatch)}; compare experiments of one model, dataset and seed list")


def _check_fresh_test(source: str, name: str, exp: dict, dataset: dict) -> None:
    """A fresh test split is the experiment's own test split drawn again by a scene generator with another
    seed; a fixed subset (or a converted source) has no other draw to offer."""
    from structae.data.datasets import SCENE_GENERATORS

    seed = exp.get("evaluate", {}).get("fresh_test_seed")
    if seed is None:
        return
    key = f"{source}: experiments.{name}.evaluate.fresh_test_seed"
    if dataset["kind"] not in SCENE_GENERATORS or exp.get("split") is not None:
        raise UserError(f"{key}: dataset '{exp['dataset']}' ({dataset['kind']}) is not a scene generator "
                        f"({', '.join(SCENE_GENERATORS)}) with its own test split; set it to null")
    if seed == dataset["seed"]:
        raise UserError(f"{key}: {seed} is the seed of dataset '{exp['dataset']}' itself, so its test split "
                        "would be the same scenes; choose another seed")


def merge(base: dict, override: Mapping) -> dict:
    """Recursive dict update, as Snakemake merges several --configfile files."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(paths: Iterable[str | Path]) -> dict:
    """Read, merge (later files override earlier ones) and validate config files."""
    paths = [Path(p) for p in paths]
    config: dict[str, Any] = {}
    for path in paths:
        config = merge(config, config_files.read(path))
    return validate_config(config, source=" + ".join(str(p) for p in paths))
