"""Does IODINE's decoder learn the scenes when no iterative inference is involved? One slot, decoded by the
experiment's own spatial broadcast decoder (or, for comparison, a transposed-conv decoder), with a plain
amortized encoder in place of the refinement network (its conv widths and MLP size): a VAE with IODINE's
pixel likelihood (`iodine.pixel_log_likelihood`, so the experiment's likelihood setting holds), KL weight,
optimiser and gradient clipping. Prints the val MSE of the posterior-mean reconstruction every --eval-every
steps beside the MSE of drawing only each scene's background, the floor every IODINE probe in docs/iodine.md
ended on. Asserts nothing.
    python probes/iodine_decoder.py --experiment iodine_multi_dsprites --steps 1500
Needs the experiment's train and val files: `snakemake data/processed/<dataset>/{train,val}.h5`.
Fed: docs/log/iodine.md: the decoder-alone table (the background floor).
"""

from __future__ import annotations

import math
import time

import torch
from probe import probe_parser, probed
from torch import nn

from structae.data import loader
from structae.models import iodine
from structae.options import from_mapping
from structae.paths import experiment_data
from structae.tables import print_table

VAL_IMAGES = 200


def arguments():
    parser = probe_parser(__doc__.splitlines()[0])
    parser.add_argument("--decoder", choices=("broadcast", "deconv"), default="broadcast")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--init", choices=("torch", "release"), default="torch",
                        help="release: Sonnet's defaults, weights N(0, 1/fan_in) truncated at 2σ, biases 0")
    return parser.parse_args()


def encoder(config: iodine.Config, channels: int, size: int) -> nn.Sequential:
    """The refinement network's stride-2 convs and MLP, reading the image alone: (B, C, H, W) -> (B, 2L)."""
    layers, c_in = [], channels
    for _ in range(config.refine_layers):
        layers += [nn.Conv2d(c_in, config.refine_width, config.kernel_size, 2, config.kernel_size // 2), nn.ELU()]
        c_in, size = config.refine_width, (size + 1) // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * size * size, config.refine_hidden), nn.ELU(),
                         nn.Linear(config.refine_hidden, 2 * config.latent))


def deconv_decoder(config: iodine.Config, channels: int, size: int) -> nn.Sequential:
    """Three stride-2 transposed convs of the decoder's width from a (size/8)² map: (B, L) -> (B, C, H, W)."""
    width, side = config.decoder_width, size // 8
    return nn.Sequential(nn.Linear(config.latent, width * side * side), nn.Unflatten(1, (width, side, side)),
                         nn.ELU(), nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ELU(),
                         nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ELU(),
                         nn.ConvTranspose2d(width, channels, 4, 2, 1))


def background_only_mse(batch: dict) -> float:
    """MSE of filling each scene with its background's mean colour: what a model that draws no object scores."""
    image, background = batch["image"], (batch["mask"] == 0)[:, None].float()
    colour = (image * background).sum((2, 3), keepdim=True) / background.sum((2, 3), keepdim=True).clamp(min=1)
    return (image - colour).pow(2).mean().item()


def main() -> None:
    args = arguments()
    config, entry = probed(args)
    data = experiment_data(config, args.experiment)
    model_config = from_mapping(iodine.Config, entry.get("model_config", {}), "model_config")
    settings = entry["train"]
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train_set = loader.load(data.train, None, "train")
    val_set = loader.load(data.val, None, "val")
    val = val_set.batch(torch.arange(min(VAL_IMAGES, len(val_set))))
    info = train_set.info()
    encode = encoder(model_config, info.channels, info.height)
    if args.decoder == "broadcast":
        decoder = iodine.BroadcastDecoder(model_config, info.channels, info.height, info.width)

        def decode(z: torch.Tensor) -> torch.Tensor:
            return decoder(z)[0]  # the means; one slot has no use for its mask logits
    else:
        decoder = decode = deconv_decoder(model_config, info.channels, info.height)
    if args.init == "release":
        iodine.release_init([*encode.modules(), *decoder.modules()])
    parameters = [*encode.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=settings["lr"])
    generator = torch.Generator().manual_seed(args.seed)
    rows, start = [], time.process_time()
    for step in range(1, (args.steps or settings["steps"]) + 1):
        image = train_set.batch(torch.randint(0, len(train_set), (settings["batch_size"],), generator=generator))[
            "image"]
        mu, raw_sigma = encode(image).chunk(2, 1)
        sigma = iodine.posterior_sigma(raw_sigma)
        means = decode(mu + sigma * torch.randn_like(mu))
        nll = -iodine.pixel_log_likelihood(image[:, None], means[:, None], model_config).flatten(1).sum(1)
        kl = iodine.gaussian_kl(mu, sigma).sum(1)
        loss = (nll + model_config.kl_weight * kl).mean()  # summed over pixels, as IODINE's loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, settings.get("grad_clip", math.inf))
        optimiser.step()
        if step % args.eval_every == 0:
            minutes = (time.process_time() - start) / 60
            with torch.no_grad():
                mse = (decode(encode(val["image"]).chunk(2, 1)[0]) - val["image"]).pow(2).mean().item()
            rows.append((str(step), f"{minutes:.2f}", f"{mse:.4f}", f"{kl.mean().item():.1f}"))
    print(f"{args.experiment}: one slot, {args.decoder} decoder, amortized encoder, seed {args.seed}, "
          f"{' '.join(args.set) or 'its settings'}; val MSE of drawing only the background: "
          f"{background_only_mse(val):.4f}")
    print_table(("step", "cpu_min", "val_mse", "train_kl"), rows)


if __name__ == "__main__":
    main()
