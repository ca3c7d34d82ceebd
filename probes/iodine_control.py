"""A control for IODINE: our model and a public reimplementation (zhixuan-lin/IODINE, "the anchor") trained
from the same batches with the same optimiser, both scored by our evaluation, so that a gap between them
says code, not compute. See docs/iodine.md ("The control").

    # once, where structae's workflow deps are installed: the big-sprites data to one npz (uint8)
    python probes/iodine_control.py --export /tmp/big_sprites.npz
    # anywhere with torch + numpy (PYTHONPATH=workflow_src), e.g. a GPU machine
    PYTHONPATH=workflow_src python probes/iodine_control.py --train both --data /tmp/big_sprites.npz \
        --anchor /tmp/anchors/iodine --steps 20000 --eval-every 500 --device cuda --out /tmp/control
    python probes/iodine_control.py --plot /tmp/control/curves.csv /tmp/control/curves.png

Sizes (--slots, --iterations, --latent, the widths and layers, --sigma) configure both models; default: the
big-sprites experiment's (config.yaml's iodine_multi_dsprites with config/iodine_big_sprites.yaml). Our Config
is built from these plus --ours-config (JSON kwargs, which win), so renamed or new Config fields need no code
change here. --iterations T counts refinements in both (ours' meaning since it follows the release, and the
anchor's ITERS): T + 1 decodings in ours (weights 0, 1/T, ..., 1, as the release), T weighted ELBO terms in the
anchor.

The training path imports only torch, numpy and structae.models.iodine's own chain; --export and --plot need
the workflow's environment (yaml, jsonschema, h5py; matplotlib).
Fed: docs/iodine.md: the control's curves (ours against zhixuan-lin/IODINE on the same batches).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import types
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATASET = "multi_dsprites_big"
CONFIGS = (ROOT / "config.yaml", ROOT / "config" / "iodine_big_sprites.yaml")
COLUMNS = ("model", "step", "minutes", "val_ari_fg", "val_ari", "val_mse", "train_loss")
IGNORE_LABEL = 255  # structae.data.h5's: stood in for where h5py is missing (a test checks they agree)
# The shared size flags and ours' Config field for each; a flag whose field Config lacks is reported, not passed.
SIZES = {"slots": 3, "iterations": 3, "latent": 16, "decoder_width": 16, "decoder_layers": 3,
         "refine_width": 16, "refine_layers": 3, "refine_hidden": 64, "kernel_size": 3, "sigma": 0.1}
# Our default refinement inputs under the anchor's names (its `mask_posterior` has no counterpart in ours).
ANCHOR_ENCODINGS = ("posterior", "grad_post", "image", "means", "mask", "mask_logits", "grad_means", "grad_mask",
                    "likelihood", "leave_one_out_likelihood", "coordinate")


# ----------------------------------------------------------------------------------------------- data

def export(out: Path, config_paths: list[Path], dataset: str) -> None:
    """Generate train and val of `dataset` with the functions the workflow's `structae data make` writes to
    h5 (the same seeds, so the same images), and save them as uint8 arrays: train_images, val_images (N, H,
    W, C), val_masks (N, H, W; 0 background, 255 ignored)."""
    from structae.config import load_config
    from structae.data import datasets

    spec = load_config(config_paths)["datasets"][dataset]
    arrays = {}
    for split in ("train", "val"):
        parts = list(datasets.batches(spec, dataset, split, []))
        arrays[f"{split}_images"] = np.concatenate([p["image"] for p in parts]).astype(np.uint8)
        if split == "val":
            arrays["val_masks"] = np.concatenate([p["mask"] for p in parts]).astype(np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"iodine_control: wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()), flush=True)


def load_data(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise SystemExit(f"iodine_control: no data file {path}; make it with --export {path} (see docs/iodine.md)")
    with np.load(path) as data:
        missing = {"train_images", "val_images", "val_masks"} - set(data.files)
        if missing:
            raise SystemExit(f"iodine_control: {path} lacks {', '.join(sorted(missing))}; re-export it with --export")
        return {key: data[key] for key in data.files}


def largest_label(masks: np.ndarray) -> int:
    """DataInfo.max_objects: the largest object label, the ignored one excluded."""
    return int(masks[masks != IGNORE_LABEL].max(initial=0))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) uint8 -> (B, C, H, W) float in [0, 1], as structae.data.loader gives our trainer."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def batch_order(n_images: int, batch: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch) train rows: seeded permutations, one per epoch, concatenated; both models read these."""
    rng = np.random.default_rng(seed)
    epochs = math.ceil(steps * batch / n_images)
    return np.concatenate([rng.permutation(n_images) for _ in range(epochs)])[:steps * batch].reshape(steps, batch)


# ----------------------------------------------------------------------------------------------- models

def import_ours():
    """structae.models.iodine and structae.metrics. metrics takes IGNORE_LABEL from structae.data.h5, which
    imports h5py at module level; where h5py is missing (a bare torch machine) a stand-in module gives it."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("structae.data.h5")
        stand_in.IGNORE_LABEL = IGNORE_LABEL
        sys.modules["structae.data.h5"] = stand_in
    from structae import metrics
    from structae.models import iodine
    return iodine, metrics


def ours_kwargs(sizes: dict, extra: dict, config_fields: set[str]) -> dict:
    """Config kwargs: the size flags Config knows, then --ours-config's (which win; null drops a key)."""
    kwargs = {}
    for name, value in sizes.items():
        if name in config_fields:
            kwargs[name] = value
        elif name not in extra:
            print(f"iodine_control: ours' Config has no field '{name}'; --{name.replace('_', '-')} applies to the "
                  "anchor only (map it with --ours-config)", flush=True)
    kwargs.update(extra)
    return {k: v for k, v in kwargs.items() if v is not None}


def build_ours(sizes: dict, extra: dict, shape: tuple[int, int, int], n_images: int, max_objects: int):
    iodine, _ = import_ours()
    from structae.data.info import DataInfo

    kwargs = ours_kwargs(sizes, extra, {f.name for f in fields(iodine.Config)})
    config = iodine.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
    channels, height, width = shape
    return iodine.Model(config, DataInfo(channels, height, width, n_images, max_objects, ())), config


def anchor_arch(sizes: dict, shape: tuple[int, int, int], encodings: list[str]) -> SimpleNamespace:
    """The anchor's ARCH (a yacs node in its repo; attributes are all IODINE() reads) at our sizes."""
    channels, height, width = shape
    if height != width or channels != 3:
        raise SystemExit(f"iodine_control: the anchor takes square RGB images only (data: {channels}×{height}×{width})")
    return SimpleNamespace(
        DIM_LATENT=sizes["latent"], ITERS=sizes["iterations"], SLOTS=sizes["slots"], ENCODING=list(encodings),
        IMG_CHANNELS=channels, IMG_SIZE=height, SIGMA=sizes["sigma"], LAYERNORM=True, STOP_GRADIENT=False,
        REF=SimpleNamespace(CONV_CHAN=sizes["refine_width"], MLP_UNITS=sizes["refine_hidden"],
                            CONV_LAYERS=sizes["refine_layers"], KERNEL_SIZE=sizes["kernel_size"], STRIDE=2),
        DEC=SimpleNamespace(CONV_CHAN=sizes["decoder_width"], CONV_LAYERS=sizes["decoder_layers"],
                            KERNEL_SIZE=sizes["kernel_size"]))


def build_anchor(path: Path, arch: SimpleNamespace):
    if not (path / "lib" / "modeling" / "iodine.py").is_file():
        raise SystemExit(f"iodine_control: no anchor at {path} (want lib/modeling/iodine.py); export it with "
                         "git archive (see docs/iodine.md)")
    sys.path.insert(0, str(path))
    # its torch.meshgrid calls lack indexing= ("ij" is what they mean): torch's warning, once per decoding
    warnings.filterwarnings("ignore", message="torch.meshgrid")
    from lib.modeling.iodine import IODINE  # imports only torch and numpy (lib.modeling also builds its VAE)
    return IODINE(arch)


# ----------------------------------------------------------------------------------------------- steps

class Side:
    """One model with its optimiser: `step(images)` trains once and returns the loss in nats per image (ours'
    normalisation); `predict(images, seed)` gives final masks (B, K, H, W) and reconstruction (B, C, H, W)."""

    def __init__(self, name: str, model: torch.nn.Module, args: argparse.Namespace):
        self.name, self.model = name, model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
        self.grad_clip = args.grad_clip
        self.seconds, self.steps, self.loss_sum, self.loss_count = 0.0, 0, 0.0, 0


class Ours(Side):
    def __init__(self, model, config, args):
        super().__init__("ours", model, args)
        self.config = config
        self.iodine, _ = import_ours()

    def step(self, images: torch.Tensor) -> torch.Tensor:
        """Our trainer's order (structae.train): zero, loss, backward, clip, step."""
        self.model.train()
        batch = {"image": images}
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.iodine.loss(self.model(batch), batch, self.config)["loss"]
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def predict(self, images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed generator per chunk, as iodine.evaluate: the posterior samples, and so the scores, repeat."""
        self.model.eval()
        with torch.no_grad():
            outputs = self.model({"image": images}, torch.Generator().manual_seed(seed))
        return outputs["masks"], outputs["reconstruction"]


class Anchor(Side):
    def __init__(self, model, args):
        super().__init__("anchor", model, args)
        self.clip = args.anchor_clip

    def step(self, images: torch.Tensor) -> torch.Tensor:
        """Its loop's order (lib/engine/train.py): forward, zero, backward, step. Its forward calls
        (B·elbo).backward() after every refinement to get the gradient inputs, which also adds the gradient of
        +elbo to every parameter; zeroing after the forward, as its loop does, drops those. Its loss is nats per
        image (summed over pixels and channels), ours' scale, so the same --grad-clip means the same thing. Its
        repository clips nothing (commented out): --no-anchor-clip."""
        self.model.train()
        loss = self.model(images).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip and self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def predict(self, images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Its own evaluation path, reconstruct() (lib/eval/ari_eval.py): T refinements, then a decoding
        of a sample of the final posterior. It needs autograd (encode() calls backward: no no_grad), samples
        from torch's global stream (forked and seeded here, so scores repeat and training's stream is
        untouched), and leaves gradients in the parameters (cleared)."""
        self.model.eval()
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            reconstruction, masks, _ = self.model.reconstruct(images)
        self.optimizer.zero_grad(set_to_none=True)
        return masks[:, :, 0].detach(), reconstruction.detach()


# ----------------------------------------------------------------------------------------------- evaluation

def score(side: Side, images: torch.Tensor, masks: torch.Tensor, metrics, seed: int, chunk: int) -> dict:
    """Our evaluation: segmentation = argmax over slots of the final masks; ARI-FG and ARI against the true
    masks (0 background, 255 ignored); MSE per pixel and channel of the reconstruction; means over images."""
    ari_fg, ari, mse = [], [], []
    for start in range(0, len(images), chunk):
        x, true = to_float(images[start:start + chunk]), masks[start:start + chunk].long()
        predicted, reconstruction = side.predict(x, seed)
        scores = metrics.segmentation_ari(true, predicted.argmax(1))
        ari_fg.append(scores["ari_fg"].cpu())
        ari.append(scores["ari"].cpu())
        mse.append((metrics.squared_error_per_image(reconstruction, x) / x[0].numel()).cpu())
    def mean(values):  # ARI-FG is NaN for an image without foreground: left out, as structae.evaluate does
        return float(torch.cat(values).double().nanmean())
    return {"val_ari_fg": mean(ari_fg), "val_ari": mean(ari), "val_mse": mean(mse)}


class Curves:
    """DIR/curves.csv, a row written and flushed per evaluation, so a killed run leaves its curve."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)
        self.file.flush()

    def add(self, side: Side, scores: dict) -> None:
        loss = side.loss_sum / side.loss_count if side.loss_count else float("nan")
        row = {"model": side.name, "step": side.steps, "minutes": side.seconds / 60, **scores, "train_loss": loss}
        self.writer.writerow([row["model"], row["step"]] + [f"{row[c]:.6g}" for c in COLUMNS[2:]])
        self.file.flush()
        rate = side.seconds / side.steps if side.steps else float("nan")
        print(f"{side.name:6s} step {side.steps:6d}  {row['minutes']:7.2f} min  ({rate:.3f} s/step)  ari_fg "
              f"{row['val_ari_fg']:.3f}  ari {row['val_ari']:.3f}  mse {row['val_mse']:.5f}  loss {loss:.4f}",
              flush=True)
        side.loss_sum, side.loss_count = 0.0, 0


def train_some(side: Side, train: torch.Tensor, order: np.ndarray, steps: int, device: torch.device) -> None:
    """`steps` more steps of `side` from its next rows of `order`; only the steps count toward its minutes."""
    losses = []
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    for rows in order[side.steps:side.steps + steps]:
        losses.append(side.step(to_float(train[torch.from_numpy(rows).to(device)])))
    synchronize()
    side.seconds += time.perf_counter() - start
    side.steps += len(losses)
    if losses:
        side.loss_sum += float(torch.stack(losses).sum())
        side.loss_count += len(losses)
        if not math.isfinite(side.loss_sum):
            print(f"iodine_control: {side.name}'s loss is not finite by step {side.steps}", flush=True)


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    data = load_data(args.data)
    train = torch.from_numpy(data["train_images"]).to(device)
    val_images = torch.from_numpy(data["val_images"][:args.val_images or None]).to(device)
    val_masks = torch.from_numpy(data["val_masks"][:args.val_images or None]).to(device)
    _, height, width, channels = train.shape
    shape, sizes = (channels, height, width), {name: getattr(args, name) for name in SIZES}
    extra = parse_json(args.ours_config)
    order = batch_order(len(train), args.batch, args.steps, args.seed)
    _, metrics = import_ours()
    sides, about = [], {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.train in ("ours", "both"):
        torch.manual_seed(args.seed)  # the same initial weights on every run
        model, config = build_ours(sizes, extra, shape, len(train), largest_label(data["val_masks"]))
        sides.append(Ours(model.to(device), config, args))
        about["ours_config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
    if args.train in ("anchor", "both"):
        if args.anchor is None:
            raise SystemExit("iodine_control: --train anchor/both needs --anchor, the anchor's exported repository")
        arch = anchor_arch(sizes, shape, args.anchor_encodings)
        torch.manual_seed(args.seed)
        sides.append(Anchor(build_anchor(args.anchor.resolve(), arch).to(device), args))
        about["anchor_arch"] = json.loads(json.dumps(arch, default=vars))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(about, indent=1) + "\n")
    for side in sides:
        print(f"{side.name}: {sum(p.numel() for p in side.model.parameters()):,} parameters", flush=True)
    curves = Curves(args.out / "curves.csv")
    torch.manual_seed(args.seed)  # the training streams (posterior samples) start alike for both
    while True:
        for side in sides:  # interleaved, so a change in the machine's load hits both and both curves grow
            curves.add(side, score(side, val_images, val_masks, metrics, args.seed, args.eval_batch))
        if sides[0].steps >= args.steps:
            break
        for side in sides:
            train_some(side, train, order, min(args.eval_every, args.steps - side.steps), device)
    for side in sides:
        print(f"{side.name}: {side.steps} steps in {side.seconds:.1f} s: {side.seconds / max(1, side.steps):.4f} "
              f"s/step (training only, on {args.device}, {args.threads} thread(s))", flush=True)


# ----------------------------------------------------------------------------------------------- plot

def plot(csv_path: Path, out: Path) -> None:
    """ARI-FG, ARI and MSE against steps (top row) and against minutes (bottom row), a line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not csv_path.is_file():
        raise SystemExit(f"iodine_control: no curves file {csv_path}")
    with csv_path.open() as file:
        rows = list(csv.DictReader(file))
    metrics_ = ("val_ari_fg", "val_ari", "val_mse")
    figure, axes = plt.subplots(2, 3, figsize=(13, 7), squeeze=False)
    for model in dict.fromkeys(row["model"] for row in rows):
        mine = [row for row in rows if row["model"] == model]
        for r, x_name in enumerate(("step", "minutes")):
            for c, metric in enumerate(metrics_):
                axes[r][c].plot([float(row[x_name]) for row in mine], [float(row[metric]) for row in mine],
                                marker=".", label=model)
                axes[r][c].set(xlabel=x_name, ylabel=metric)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(f"IODINE control: {csv_path}")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    print(f"iodine_control: wrote {out}", flush=True)


# ----------------------------------------------------------------------------------------------- command line

def parse_json(text: str | None) -> dict:
    """--ours-config: inline JSON or a .json file's path."""
    if not text:
        return {}
    try:
        value = json.loads(Path(text).read_text() if text.endswith(".json") else text)
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"iodine_control: --ours-config is neither JSON nor a readable .json file ({error})") from None
    if not isinstance(value, dict):
        raise SystemExit("iodine_control: --ours-config must be a JSON object of iodine.Config kwargs")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--export", type=Path, metavar="DATA.npz", help="write the big-sprites data to an npz")
    what.add_argument("--train", choices=("ours", "anchor", "both"))
    what.add_argument("--plot", type=Path, nargs=2, metavar=("CURVES.csv", "OUT.png"))
    defaults = " + ".join(str(c.relative_to(ROOT)) for c in CONFIGS)
    p.add_argument("--config", type=Path, action="append", help=f"--export's config files (default: {defaults})")
    p.add_argument("--dataset", default=DATASET, help="--export's dataset")
    p.add_argument("--data", type=Path, help="the npz --export wrote")
    p.add_argument("--anchor", type=Path, help="the anchor's exported repository (git archive of zhixuan-lin/IODINE)")
    p.add_argument("--out", type=Path, help="where curves.csv and config.json go")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--grad-clip", type=float, default=5.0, help="global norm on the per-pixel loss; 0: none")
    p.add_argument("--anchor-clip", action=argparse.BooleanOptionalAction, default=True,
                   help="clip the anchor too (its release does not)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-images", type=int, default=0, help="score the first N val images (0: all)")
    p.add_argument("--eval-batch", type=int, default=100)
    for name, default in SIZES.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    p.add_argument("--ours-config", help="JSON object (or a .json file) of iodine.Config kwargs; wins over the "
                                         "size flags; null drops a key")
    p.add_argument("--anchor-encodings", nargs="+", default=list(ANCHOR_ENCODINGS),
                   help="the anchor's refinement inputs (default: ours' under its names)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.export:
        export(args.export, args.config or list(CONFIGS), args.dataset)
    elif args.plot:
        plot(*args.plot)
    else:
        if args.data is None or args.out is None:
            raise SystemExit("iodine_control: --train needs --data DATA.npz and --out DIR")
        if args.steps < 0 or args.eval_every < 1:
            raise SystemExit("iodine_control: --steps must be >= 0 and --eval-every >= 1")
        run(args)


if __name__ == "__main__":
    main()
