"""The CAE against the official implementation (loeweX/ComplexAutoEncoder), side by side (bench/versus.py):
    python bench/cae.py --anchor /tmp/anchors/src/cae --anchor-python /tmp/anchors/venv-cae/bin/python
Cases, both at the official 2Shapes settings (32×32×1, hidden 32, linear 64, batch 64):
    train     forward + backward + Adam step
    train_compiled  the same with train.compile on our side (compiling happens in the warm-up, not timed)
    evaluate  forward, phase clustering (k = objects + background per image) and ARI with and without
              background, on 64 images with 2 objects: the official per-image scikit-learn KMeans against ours
"""

from __future__ import annotations

from pathlib import Path

import torch
from versus import Case, main

from bench_common import pipeline_step

SIDE, LABELS = 32, 3  # 2Shapes: background + 2 objects


def _data(batch: int):
    images = torch.rand(batch, 1, SIDE, SIDE)
    labels = torch.randint(0, LABELS, (batch, SIDE, SIDE))
    return images, labels


def _ours(training: bool, size: int, compiled: bool = False):
    from structae.data.info import DataInfo
    from structae.models import cae

    config = cae.Config(hidden=32, linear=64)
    model = cae.Model(config, DataInfo(1, SIDE, SIDE, size, LABELS - 1, ()))
    images, labels = _data(size)
    batch = {"image": images, "mask": labels}
    if not training:
        model.eval()
        settings = cae.EvalConfig()

        def evaluate():
            with torch.no_grad():
                cae.evaluate(model, batch, config, settings)
        return evaluate
    forward = torch.compile(model) if compiled else None  # as train.compile does
    return pipeline_step(cae, config, model, batch, lr=1e-3, forward=forward)


def _anchor(path: Path, training: bool, size: int):
    from codebase.model.ComplexAutoEncoder import ComplexAutoEncoder
    from omegaconf import OmegaConf

    opt = OmegaConf.create({
        "seed": 42, "use_cuda": False,
        "input": {"batch_size": size, "channel": 1, "image_height": SIDE, "image_width": SIDE},
        "model": {"hidden_dim": 32, "linear_dim": 64},
        "training": {"learning_rate": 1e-3, "print_idx": 10**9},  # no evaluation inside training steps
        "evaluation": {"phase_mask_threshold": 0.1}})
    model = ComplexAutoEncoder(opt)
    images, labels = _data(size)
    if not training:
        model.eval()

        def evaluate():
            with torch.no_grad():
                model(images, labels, 0, partition="test", evaluate=True)
        return evaluate
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        model(images, labels, 1)["loss"].backward()
        optimizer.step()
    return step


CASES = {
    "train": Case(lambda size: _ours(True, size), lambda path, size: _anchor(path, True, size),
                  "training step at the official 2Shapes settings", batch=64),
    "train_compiled": Case(lambda size: _ours(True, size, compiled=True), lambda path, size: _anchor(path, True, size),
                           "the same, ours with train.compile (the anchor as it is)", batch=64),
    "evaluate": Case(lambda size: _ours(False, size), lambda path, size: _anchor(path, False, size),
                     "evaluation: forward, phase clustering, ARI with and without background", batch=64),
}

if __name__ == "__main__":
    main(__file__, CASES, __doc__)
