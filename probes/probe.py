"""A short, measured training probe of one experiment with changed settings: the loss terms on a fixed set
of its training images (eval mode) every --eval-every steps, against CPU minutes. Prints a table; asserts
nothing. What the fidelity work tried is recorded from these tables in docs/.
    python probes/probe.py --experiment vae_to_element --set model_config.beta_kl=0.0033 --steps 600
Needs the experiment's data: `snakemake <its processed split> [<its split index>]`.
Fed: docs/log/maganet.md: the KL-weight probes behind the embedded VAE and MAGANet settings.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import yaml

from structae import models
from structae.config import load_config
from structae.data import loader
from structae.options import from_mapping
from structae.paths import experiment_data
from structae.tables import print_table
from structae.train import lr_factor

PROBE_IMAGES = 1000  # training images the terms are measured on, the same at every evaluation


def probe_parser(description: str) -> argparse.ArgumentParser:
    """The options every probe script shares: which experiment, its config, the settings changed, the budget."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--config", action="append", help="config files (default: config.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the experiment, e.g. train.lr=3e-3 or model_config.latent=16")
    parser.add_argument("--steps", type=int, help="default: the experiment's train.steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def probed(args: argparse.Namespace) -> tuple[dict, dict]:
    """The config and the probed experiment's entry with the --set changes, also put back into the config (so
    that a changed dataset is the one experiment_data names)."""
    config = load_config(args.config or ["config.yaml"])
    entry = overridden(copy.deepcopy(config["experiments"][args.experiment]), args.set)
    config["experiments"][args.experiment] = entry
    return config, entry


def arguments() -> argparse.Namespace:
    parser = probe_parser(__doc__.splitlines()[0])
    parser.add_argument("--eval-every", type=int, default=100)
    return parser.parse_args()


def overridden(entry: dict, assignments: list[str]) -> dict:
    for assignment in assignments:
        key, value = assignment.split("=", 1)
        *parents, last = key.split(".")
        target = entry
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = yaml.safe_load(value)
    return entry


@torch.no_grad()
def terms(module, model, batch, config) -> dict[str, float]:
    model.eval()
    values = module.loss(model(batch), batch, config)
    model.train()
    return {key: value.item() for key, value in values.items()}


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    config, entry = probed(args)
    settings = {**entry["train"], "steps": args.steps or entry["train"]["steps"]}
    data = experiment_data(config, args.experiment)
    images = loader.load(data.train, data.split, "train")
    module = models.get(entry["model"])
    model_config = from_mapping(module.Config, entry["model_config"], "model_config")
    torch.manual_seed(args.seed)
    model = module.Model(model_config, images.info())
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, settings))
    probe = images.batch(loader.step_rows(len(images), PROBE_IMAGES, 12345, 0))
    rows, names, trained = [], None, 0.0
    for step in range(settings["steps"] + 1):
        if step % args.eval_every == 0 or step == settings["steps"]:
            measured = terms(module, model, probe, model_config)
            names = names or list(measured)
            rows.append((str(step), f"{trained / 60:.2f}", *(f"{measured[k]:.4g}" for k in names)))
        if step == settings["steps"]:
            break
        start = time.perf_counter()
        batch = images.batch(loader.step_rows(len(images), settings["batch_size"], args.seed, step))
        loss = module.loss(model(batch), batch, model_config)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        trained += time.perf_counter() - start
    print(f"{args.experiment} with {' '.join(args.set) or 'its settings'}: terms on {PROBE_IMAGES} training images")
    print_table(("step", "cpu_min", *names), rows)


if __name__ == "__main__":
    main()
