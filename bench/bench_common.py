"""What the scripts in bench/ share: our training step as the pipeline takes it. Imported by the anchors'
workers too (bench/versus.py), whose environments have torch but no structae: nothing here imports structae
at the top. The scripts print their tables with structae.tables.print_table."""

from __future__ import annotations


def pipeline_step(module, config, model, batch: dict, lr: float, grad_clip: float = 0.0, forward=None):
    """One of our training steps as structae.train.fit takes it (AdamW with weight decay 0, the model's loss,
    optional gradient clipping), as a callable; `forward` replaces the model's call (a compiled model)."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    forward = forward or model

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        module.loss(forward(batch), batch, config)["loss"].backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return step
