"""`structae`: the command line every workflow rule calls; each verb is a thin shell over the package.

Entries of the config (a dataset, a split, an experiment) come from `--config` files when run by hand,
or as `--spec JSON` from the workflow, which passes exactly the entry the job depends on so that
Snakemake reruns the job when, and only when, that entry changes.
"""

from __future__ import annotations

import argparse
import json
import sys

from structae.errors import UserError


def _entry(args, section: str, name: str) -> dict:
    """The config entry `section.name`: from --spec when given, else from the --config files."""
    from structae import config as cfg

    if args.spec is not None:
        try:
            entry = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise UserError(f"--spec is not valid JSON ({err.msg}); pass the entry as a JSON object") from None
        return cfg.validate_entry(section, name, entry)
    config = cfg.load_config(args.config or ["config.yaml"])
    entries = config.get(section, {})
    if name not in entries:
        raise UserError(f"{section[:-1]} '{name}' is not in the config; known: {', '.join(sorted(entries))}")
    return entries[name]


def cmd_data_download(args) -> None:
    from structae.data.download import download

    digest = download(args.source, args.out, mirror=args.mirror or None)
    print(f"{args.out}: sha256 {digest}")


def cmd_data_make(args) -> None:
    from structae.data.datasets import make_split

    spec = _entry(args, "datasets", args.dataset)
    rows = make_split({"datasets": {args.dataset: spec}}, args.dataset, args.split, args.out, args.raw)
    print(f"{args.out}: {rows} images")


def cmd_data_inspect(args) -> None:
    from structae.figures.data import sample_grid

    sample_grid(args.data, args.out, n=args.n)
    print(f"{args.out}: written")


def cmd_split(args) -> None:
    from structae.data.splits import make_split

    counts = make_split(_entry(args, "splits", args.split), args.split, args.data, args.out)
    print(f"{args.out}: train {counts['train']} images, test {counts['test']}, pivot row {counts['pivot']}")


def _add_entry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="the config entry as JSON (the workflow passes it); default: --config")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="structae", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", metavar="FILE",
                        help="config file(s), later ones override earlier ones (default: config.yaml)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    data = verbs.add_parser("data", help="download, make and inspect datasets").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    download = data.add_parser("download", help="fetch a source file and check its sha256")
    download.add_argument("--source", required=True)
    download.add_argument("--out", required=True)
    download.add_argument("--mirror", help="a directory or file:// URL holding the files by name")
    download.set_defaults(run=cmd_data_download)
    make = data.add_parser("make", help="generate or convert one split of a dataset to HDF5")
    make.add_argument("--dataset", required=True)
    make.add_argument("--split", required=True)
    make.add_argument("--out", required=True)
    make.add_argument("--raw", nargs="*", default=[], help="downloaded source files, in the kind's order")
    _add_entry_options(make)
    make.set_defaults(run=cmd_data_make)
    inspect = data.add_parser("inspect", help="render a grid of samples with their masks")
    inspect.add_argument("--data", required=True, help="a processed split (.h5)")
    inspect.add_argument("--out", required=True, help="the PNG to write")
    inspect.add_argument("--n", type=int, default=8)
    inspect.set_defaults(run=cmd_data_inspect)

    split = verbs.add_parser("split", help="write a recombination split's index file")
    split.add_argument("--split", required=True)
    split.add_argument("--data", required=True)
    split.add_argument("--out", required=True)
    _add_entry_options(split)
    split.set_defaults(run=cmd_split)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as err:
        print(f"structae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("structae: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())


