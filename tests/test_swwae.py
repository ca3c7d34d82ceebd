"""SWWAE's what-where pooling against max pooling, soft pooling's limit, the loss terms of each mode, the
oversampling of labelled rows, and the linear probe's stop-gradient."""

import pytest
import torch
import torch.nn.functional as F

from structae.data.info import DataInfo
from structae.models import swwae

INFO = DataInfo(channels=1, height=28, width=28, n_images=200, max_objects=1, factors=("label",))


def _batch(n=8, labelled_rows=None):
    generator = torch.Generator().manual_seed(0)
    index = torch.arange(n) if labelled_rows is None else labelled_rows
    return {"image": torch.rand(n, 1, 28, 28, generator=generator), "index": index,
            "factors": {"label": torch.randint(0, 10, (n,), generator=generator)}}


def test_hard_pooling_is_max_pooling_and_unpooling_is_max_unpooling():
    a = torch.randn(2, 3, 6, 8)
    what, where = swwae.pool(a, "hard", 1.0)
    expected, indices = F.max_pool2d(a, 2, return_indices=True)
    torch.testing.assert_close(what, expected)
    unpooled = F.max_unpool2d(expected, indices, 2, output_size=a.shape[-2:])
    torch.testing.assert_close(swwae.unpool(what, where), unpooled)


def test_soft_pooling_tends_to_hard_pooling_and_keeps_mass():
    a = torch.randn(2, 3, 6, 8)
    hard_what, hard_where = swwae.pool(a, "hard", 1.0)
    sharp_what, sharp_where = swwae.pool(a, "soft", 1e4)
    torch.testing.assert_close(sharp_what, hard_what, atol=1e-3, rtol=0)
    torch.testing.assert_close(sharp_where, hard_where, atol=1e-3, rtol=0)
    what, where = swwae.pool(a, "soft", 1.0)
    assert ((where >= 0) & (where <= 1)).all()
    assert ((what <= hard_what + 1e-6) & (what >= a.amin() - 1e-6)).all()  # a weighted mean of the window
    # Bilinear splatting puts all of "what" back into its window.
    torch.testing.assert_close(F.avg_pool2d(swwae.unpool(what, where), 2) * 4, what)


@pytest.mark.parametrize("mode", ["supervised", "semi", "unsupervised"])
def test_modes_train_what_they_should(mode):
    settings = {"supervised": dict(lambda_rec=0, lambda_m=0), "semi": {}, "unsupervised": dict(probe=True)}[mode]
    config = swwae.Config(channels=(4, 8), labelled=3, **settings)
    torch.manual_seed(0)
    model = swwae.Model(config, INFO)
    batch = _batch()
    terms = swwae.loss(model(batch), batch, config)
    terms["loss"].backward()
    encoder_grad = model.encoder[0].weight.grad.abs().sum()
    decoder_grad = model.decoder[0].weight.grad
    assert model.classifier.weight.grad.abs().sum() > 0
    if mode == "supervised":
        assert decoder_grad is None or decoder_grad.abs().sum() == 0  # λ_rec = λ_M = 0
        assert encoder_grad > 0
    else:
        assert decoder_grad.abs().sum() > 0 and encoder_grad > 0
    if mode == "unsupervised":  # the probe's NLL does not reach the encoder
        model.zero_grad()
        swwae.loss(model(batch), batch, config)["nll"].backward()
        assert model.encoder[0].weight.grad is None or model.encoder[0].weight.grad.abs().sum() == 0


def test_nll_counts_only_labelled_rows():
    config = swwae.Config(channels=(4, 8), labelled=3)
    model = swwae.Model(config, INFO)
    batch = _batch()
    outputs = model(batch)
    expected = F.cross_entropy(outputs["logits"][:3], batch["factors"]["label"][:3])
    torch.testing.assert_close(swwae.loss(outputs, batch, config)["nll"], expected)


def test_batches_oversample_the_labelled_rows_deterministically():
    config = swwae.Config(labelled=10, labelled_fraction=0.5)
    rows = swwae.step_rows(1000, 64, seed=3, step=7, config=config)
    assert len(rows) == 64 and (rows[:32] < 10).all()
    assert torch.equal(rows, swwae.step_rows(1000, 64, seed=3, step=7, config=config))
    everything = swwae.step_rows(1000, 64, seed=3, step=7, config=swwae.Config(labelled=0, labelled_fraction=0.0))
    assert (everything >= 10).sum() > 50  # no oversampling without labelled_fraction
