"""`structae`: the command line every workflow rule calls; each verb is a thin shell over the package.

Entries of the config (a dataset, a split, an experiment) come from `--config` files when run by hand,
or as `--spec JSON` from the workflow, which passes exactly the entry the job depends on so that
Snakemake reruns the job when, and only when, that entry changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from structae import kernels
from structae.errors import Preempted, UserError


def _config(args) -> dict:
    from structae import config as cfg
    from structae import scales

    return cfg.load_config(args.config or scales.files(args.scale))


def _entry(args, section: str, name: str) -> dict:
    """The config entry `section.name`: from --spec when given, else from the --config files."""
    from structae import config as cfg
    from structae import names

    if args.spec is not None:
        try:
            entry = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise UserError(f"--spec is not valid JSON ({err.msg}); pass the entry as a JSON object") from None
        return cfg.validate_entry(section, name, entry)  # checks the name too
    names.check(section[:-1], name)
    config = _config(args)
    entries = config.get(section, {})
    if name not in entries:
        raise UserError(f"{section[:-1]} '{name}' is not in the config; known: {', '.join(sorted(entries))}")
    return entries[name]


def cmd_data_download(args) -> None:
    from structae.data.download import download

    digest = download(args.source, args.out, mirror=args.mirror or None)
    print(f"{args.out}: sha256 {digest}")


def cmd_data_make(args) -> None:
    from structae.data.datasets import SCENE_GENERATORS, make_split

    spec = _entry(args, "datasets", args.dataset)
    if args.seed is not None:
        if spec["kind"] not in SCENE_GENERATORS:
            raise UserError(f"--seed: dataset '{args.dataset}' ({spec['kind']}) is not a scene generator "
                            f"({', '.join(SCENE_GENERATORS)}); leave --seed out")
        spec = {**spec, "seed": args.seed}
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


def _experiment_data(args, name: str):
    """The experiment's data files: --data/--split-index as the workflow passes them, else from the config."""
    from structae.paths import ExperimentData, experiment_data

    if args.data:
        return ExperimentData(args.data, args.data, args.split_index)
    if args.spec is not None:
        raise UserError("with --spec, pass the data file with --data (and --split-index for a split)")
    return experiment_data(_config(args), name)


def cmd_train(args) -> None:
    from structae import paths
    from structae.train import Run, train

    entry = _entry(args, "experiments", args.experiment)
    seed = entry["seeds"][0] if args.seed is None else args.seed
    run = Run(Path(args.out or paths.checkpoint(args.experiment, seed)),
              Path(args.train_log or paths.train_log(args.experiment, seed)),
              Path(args.resume_dir or paths.resume_dir(args.experiment, seed)))
    data = _experiment_data(args, args.experiment)
    if args.val_data:
        data = dataclasses.replace(data, val=args.val_data)
    if entry["train"]["validate_every"] and data.val is None:
        raise UserError(f"experiments.{args.experiment}.train.validate_every is set: pass the dataset's val split "
                        "with --val-data (or set it to 0)")
    result = train(args.experiment, entry, seed, data, run, args.threads)
    print(f"{run.model_file}: {result['steps']} steps, final loss {result.get('loss', float('nan')):.6g}")


def cmd_evaluate(args) -> None:
    from structae import paths
    from structae.evaluate import evaluate

    entry = _entry(args, "experiments", args.experiment)
    files = args.checkpoints or [paths.checkpoint(args.experiment, seed) for seed in entry["seeds"]]
    if len(files) != len(entry["seeds"]):
        raise UserError(f"{len(files)} checkpoints for the {len(entry['seeds'])} seeds {entry['seeds']}; "
                        "pass one per seed, in order")
    other = entry["evaluate"]["compare_with"]
    references = args.reference_checkpoints or ([paths.checkpoint(other, seed) for seed in entry["seeds"]]
                                                if other else [])
    if references and len(references) != len(files):
        raise UserError(f"{len(references)} reference checkpoints for {len(files)} checkpoints; pass one per seed")
    fresh = args.fresh_seed
    out = args.out or (paths.metrics(args.experiment) if fresh is None else paths.fresh_metrics(args.experiment))
    data = _experiment_data(args, args.experiment)
    if fresh is not None and not args.data:
        data = paths.ExperimentData(data.train, paths.fresh_test(entry["dataset"], fresh))
    result = evaluate(args.experiment, entry, dict(zip(entry["seeds"], files, strict=True)), data, out,
                      dict(zip(entry["seeds"], references, strict=True)) if references else None, fresh)
    for seed, values in result["seeds"].items():
        print(f"{out}: seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))


def cmd_table(args) -> None:
    from structae.tables import write_table

    frame = write_table(args.metrics, args.out, args.markdown, args.html)
    print(f"{args.out}: {len(frame)} rows; {args.markdown}: written")


def cmd_claims(args) -> None:
    from structae import claims, files
    from structae.tables import read_tidy

    figures = [Path(path) for path in args.figures if path]
    files.write_text(args.out, claims.page(args.paper, read_tidy(args.table), figures, args.scale))
    print(f"{args.out}: {len(claims.CLAIMS.get(args.paper, []))} claims checked")


def cmd_claims_table(args) -> None:
    from structae import claims, files
    from structae.tables import read_tidy

    tables = {Path(path).stem: read_tidy(path) for path in args.tables}
    unknown = sorted(tables.keys() - claims.CLAIMS.keys())
    if unknown:
        raise UserError(f"no claims for {', '.join(unknown)}: --tables takes results/tables/PAPER.csv of the papers "
                        f"{', '.join(claims.CLAIMS)}")
    files.write_text(args.out, claims.markdown(tables))
    print(f"{args.out}: {sum(map(len, claims.CLAIMS.values()))} claims, measured for {', '.join(tables) or 'none'}")


# `structae figure NAME` options: each is a keyword argument of the figure's draw function.
FIGURE_INPUTS = ("checkpoint", "checkpoints", "labels", "data", "split_index", "metrics", "embeddings", "logs",
                 "title")


def cmd_figure(args) -> None:
    from structae.figures import registry

    figures = registry()
    if args.name not in figures:
        raise UserError(f"no figure '{args.name}'; the figures are: {', '.join(sorted(figures))}")
    figure = figures[args.name]
    given = {key: getattr(args, key) for key in FIGURE_INPUTS if getattr(args, key) is not None}
    accepted = figure.options() - {"out"}
    if "split_index" in accepted:
        given.setdefault("split_index", None)  # only recombination splits have one
    if given.keys() - accepted:
        extra = ", ".join("--" + key.replace("_", "-") for key in sorted(given.keys() - accepted))
        raise UserError(f"figure '{args.name}' takes no {extra}; it takes: "
                        f"{', '.join('--' + key.replace('_', '-') for key in sorted(accepted))}")
    missing = sorted(figure.required() - given.keys() - {"out"})
    if missing:
        raise UserError(f"figure '{args.name}' needs {', '.join('--' + key.replace('_', '-') for key in missing)}")
    if "labels" in given:
        _same_length(given.get("checkpoints") or given.get("embeddings") or [], given["labels"])
    figure.draw(out=args.out, **given)
    print(f"{args.out}: written")


def cmd_embed(args) -> None:
    from structae.figures.maganet import umap_embedding

    umap_embedding(args.checkpoint, args.data, args.split_index, args.out)
    print(f"{args.out}: written")


def _same_length(names: list, labels: list) -> None:
    if len(names) != len(labels):
        raise UserError(f"{len(names)} files but {len(labels)} labels; pass one label per file")


def cmd_share(args) -> None:
    from structae import share

    root = Path.cwd()
    if args.action == "push":
        files = share.push(root, args.remote)
        print("now commit the pointers so that others can pull: git add " + " ".join(files)
              + " && git commit -m 'Share results' && git push")
    else:
        restored = share.pull(root, args.remote)
        print(f"pulled; restored the provenance of {restored} files: `snakemake -n all` now shows what is missing")


def cmd_kernels(args) -> None:
    facts = kernels.record(args.out) if args.out else kernels.describe()  # record() describes and writes
    print("\n".join(f"{key}: {value}" for key, value in facts.items()))


def _add_entry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="the config entry as JSON (the workflow passes it); default: --config")


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="the processed split to read (default: from the config)")
    parser.add_argument("--split-index", help="a recombination split's index file (.npz) selecting rows of --data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="structae", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", metavar="FILE",
                        help="config file(s), later ones override earlier ones (default: the --scale's files)")
    parser.add_argument("--kernels", help="portable (default, or $STRUCTAE_KERNELS): the same numbers on every "
                        "x86-64 CPU with AVX2; native: the CPU's fastest kernels (structae.kernels)")
    parser.add_argument("--scale", default="embedded", help="read this scale's config files, as the workflow's "
                        "`--config scale=NAME` does: embedded (default), paper or tiny")
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
    make.add_argument("--seed", type=int, help="a scene generator's seed instead of the dataset's: the fresh "
                      "test split of evaluate.fresh_test_seed")
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

    train = verbs.add_parser("train", help="train one seed of an experiment (resumes an interrupted run)")
    train.add_argument("--experiment", required=True)
    train.add_argument("--seed", type=int, help="default: the experiment's first seed")
    train.add_argument("--out", help="the model file (default: results/checkpoints/EXPERIMENT/seedS/model.pt)")
    train.add_argument("--train-log", help="the CSV training log (default: beside the model file)")
    train.add_argument("--resume-dir", help="where unfinished runs keep their state (default: results/resume/...)")
    train.add_argument("--threads", type=int, help="CPU threads (split among torchrun processes)")
    train.add_argument("--val-data", help="the val split scored every train.validate_every steps "
                       "(default: from the config)")
    _add_data_options(train)
    _add_entry_options(train)
    train.set_defaults(run=cmd_train)

    evaluate = verbs.add_parser("evaluate", help="score an experiment's checkpoints on its test images")
    evaluate.add_argument("--experiment", required=True)
    evaluate.add_argument("--checkpoints", nargs="+", help="one model file per seed, in the order of seeds")
    evaluate.add_argument("--reference-checkpoints", nargs="+",
                          help="evaluate.compare_with's model files, one per seed (default: from the config)")
    evaluate.add_argument("--out", help="the metrics JSON (default: results/metrics/EXPERIMENT.json)")
    evaluate.add_argument("--fresh-seed", type=int, help="the test images are the test split generated anew with "
                          "this seed (evaluate.fresh_test_seed; default data: data/fresh/DATASET/test_seedN.h5, "
                          "out: results/metrics/fresh/EXPERIMENT.json); the metrics record it")
    _add_data_options(evaluate)
    _add_entry_options(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)

    table = verbs.add_parser("table", help="collect metrics files into a tidy CSV and a markdown summary")
    table.add_argument("--metrics", nargs="+", required=True)
    table.add_argument("--out", required=True, help="the CSV")
    table.add_argument("--markdown", required=True, help="the markdown summary")
    table.add_argument("--html", help="the same table as an HTML page (the report shows it inline)")
    table.set_defaults(run=cmd_table)

    claims = verbs.add_parser("claims", help="check a paper's claims against its table: the report's claims page")
    claims.add_argument("--paper", required=True)
    claims.add_argument("--table", required=True, help="the paper's tidy CSV (structae table --out)")
    claims.add_argument("--figures", nargs="*", default=[], help="PNG figures shown beside the claims")
    claims.add_argument("--scale", default="embedded", help="the scale the run was made at, for the page's title")
    claims.add_argument("--out", required=True, help="the HTML page")
    claims.set_defaults(run=cmd_claims)

    table = verbs.add_parser("claims-table", help="every paper's claims in one Markdown table (the README's)")
    table.add_argument("--tables", nargs="*", default=[], help="the papers' tidy CSVs, results/tables/PAPER.csv")
    table.add_argument("--out", required=True, help="the Markdown file")
    table.set_defaults(run=cmd_claims_table)

    embed = verbs.add_parser("embed", help="UMAP (3 components) of a MAGANet or VAE model's latents")
    embed.add_argument("--checkpoint", required=True)
    _add_data_options(embed)
    embed.add_argument("--out", required=True, help="an .npz with the embedding and the dSprites factors")
    embed.set_defaults(run=cmd_embed)

    share = verbs.add_parser("share", help="push or pull datasets and checkpoints through DVC (with provenance)")
    share.add_argument("action", choices=["push", "pull"])
    share.add_argument("--remote", help="a DVC remote name (default: the repository's default, `shared`)")
    share.set_defaults(run=cmd_share)

    kernel = verbs.add_parser("kernels", help="show the kernels this machine's jobs compute with (--kernels)")
    kernel.add_argument("--out", help="also write them as JSON to this file")
    kernel.set_defaults(run=cmd_kernels)

    figure = verbs.add_parser("figure", help="draw one figure of the registry in structae.figures")
    figure.add_argument("name", help="the figure's name, e.g. phase, slots, iterations, umap_shape, training_curves")
    figure.add_argument("--out", required=True, help="the file to write (PNG, or GIF for an animation)")
    figure.add_argument("--checkpoint", help="a trained model.pt (figures of one model)")
    figure.add_argument("--checkpoints", nargs="+", help="several model.pt files (figures comparing models)")
    figure.add_argument("--labels", nargs="+", help="one title per checkpoint or embedding")
    figure.add_argument("--data", help="the processed split with the test images")
    figure.add_argument("--split-index", help="a recombination split's index file (.npz)")
    figure.add_argument("--metrics", nargs="+", help="metrics JSON files of the paper's experiments")
    figure.add_argument("--embeddings", nargs="+", help=".npz files of `structae embed`")
    figure.add_argument("--logs", nargs="+", help="train_log.csv files")
    figure.add_argument("--title")
    figure.set_defaults(run=cmd_figure)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Before any verb imports torch: its libraries read their kernel switches once, at first use.
        kernels.pin(kernels.check(args.kernels, "--kernels") if args.kernels else kernels.mode())
        args.run(args)
    except UserError as err:
        print(f"structae: error: {err}", file=sys.stderr)
        return 2
    except Preempted as stop:
        print(f"structae: {stop}", file=sys.stderr)
        from structae import requeue

        requeued = requeue.at_time_limit(stop.signum)
        if requeued:
            print(f"structae: {requeued}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("structae: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a full disk under a library's own write (a cache); ours name what they needed
        from structae.files import out_of_space

        if not out_of_space(err):
            raise
        print(f"structae: error: {err.strerror or err} writing {err.filename or 'a file'}: free space there",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


