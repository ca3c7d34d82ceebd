"""A short training probe scored on the validation split: the workflow's own trainer (structae.train) with
some settings changed, its val_* scores every --validate-every steps against training minutes. Prints a
table; asserts nothing. The fidelity probes recorded in docs/ (IODINE, CAE) come from these tables; settings
are chosen here, on val scenes, never on test scenes.
    python probes/val_probe.py --experiment iodine_multi_dsprites --set model_config.latent=4 --steps 1000
--init-from CHECKPOINT continues a finished run: its weights (and BatchNorm statistics) replace the new model's
initial ones, while the optimiser starts afresh (a checkpoint keeps no Adam moments; the experiment's warm-up
covers that), so a long run can be taken further and scored on val at every step count.
Needs the experiment's train and val files: `snakemake data/processed/<dataset>/{train,val}.h5`.
Fed: docs/log/iodine.md and docs/log/cae.md: every val-scored settings probe.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from probe import probe_parser, probed

from structae import checkpoint, models
from structae.config import validate_entry
from structae.paths import experiment_data
from structae.tables import print_table
from structae.train import Run, train


def arguments() -> argparse.Namespace:
    parser = probe_parser(__doc__.splitlines()[0])
    parser.add_argument("--validate-every", type=int, default=100)
    parser.add_argument("--validate-images", type=int, default=200)
    parser.add_argument("--metrics", default="ari_fg,ari,mse", help="val metrics to print, comma-separated")
    parser.add_argument("--keep", metavar="DIR", help="keep the trained model and its log in DIR")
    parser.add_argument("--init-from", metavar="CHECKPOINT", help="start from this model.pt's weights")
    return parser.parse_args()


def start_from(path: str, model_name: str) -> None:
    """Make the trainer's new `model_name` models load the weights of checkpoint `path` (the trainer builds
    its model itself; this probe-only hook leaves the engine without an option no experiment uses)."""
    _, trained, _ = checkpoint.load_model(path, model_name)
    module = models.get(model_name)
    built = module.Model

    class Continued(built):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.load_state_dict(trained.state_dict())  # raises if the probe's settings change the shapes

    module.Model = Continued


def main() -> None:
    args = arguments()
    config, entry = probed(args)
    entry["train"].update(steps=args.steps or entry["train"]["steps"], validate_every=args.validate_every,
                          validate_images=args.validate_images, log_every=args.validate_every,
                          checkpoint_every=10 ** 9)
    entry = validate_entry("experiments", args.experiment, entry)
    config["experiments"][args.experiment] = entry  # with validation on, so that its val file is named
    data = experiment_data(config, args.experiment)
    if not data.val or not Path(data.val).is_file():
        raise SystemExit(f"no val split file for {args.experiment} ({data.val}); make it with snakemake first")
    if args.init_from:
        start_from(args.init_from, entry["model"])
    torch.set_num_threads(args.threads)
    start = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        out.mkdir(parents=True, exist_ok=True)
        run = Run(out / "model.pt", out / "train_log.csv", Path(tmp, "resume"))
        train(args.experiment, entry, args.seed, data, run, threads=args.threads)
        log = pd.read_csv(run.log_file)
    cpu_minutes = (time.process_time() - start) / 60
    wanted = [f"val_{name}" for name in args.metrics.split(",") if f"val_{name}" in log]
    rows = [(str(int(row.step)), f"{row.train_minutes:.2f}", *(f"{getattr(row, col):.3f}" for col in wanted))
            for row in log.dropna(subset=wanted[:1]).itertuples()]
    print(f"{args.experiment} seed {args.seed} with {' '.join(args.set) or 'its settings'} "
          f"({cpu_minutes:.1f} CPU minutes in all, validation included)")
    print_table(("step", "train_min", *wanted), rows)


if __name__ == "__main__":
    main()
