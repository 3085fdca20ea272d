"""BatchNorm-matched synthetic images for a model that creates its BatchNorms in another order than it calls them
(a U-Net whose decoder is declared first: bench/fuzz.py's model 1020). The regression: bn_matched_inputs zipped
the batch statistics, gathered in call order, with the running statistics, taken in module order, so such a model
either died in spattern.prune with a tensor size mismatch (widths differ) or matched each layer to another's
statistics (widths equal)."""

from __future__ import annotations

import torch
from torch import nn

from spattern.pruning.synthetic import bn_matched_inputs


class DecoderFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dec = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.BatchNorm2d(4))  # called last, created first
        self.enc = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def test_each_batchnorm_call_is_matched_to_its_own_statistics():
    torch.manual_seed(0)
    model = DecoderFirst().eval()
    with torch.no_grad():
        model.enc[1].running_mean.fill_(0.5)
        model.dec[1].running_mean.fill_(-0.5)
    images = bn_matched_inputs(model, (3, 12, 12), n=4, steps=30, batch=4, use_cache=False)
    assert images.shape == (4, 3, 12, 12) and torch.isfinite(images).all()
    seen = {}
    hooks = [bn.register_forward_hook(lambda m, i, o, n=name: seen.__setitem__(n, i[0].mean(dim=(0, 2, 3))))
             for name, bn in (("enc", model.enc[1]), ("dec", model.dec[1]))]
    with torch.no_grad():
        model(images)
    for h in hooks:
        h.remove()
    # Each layer's input mean moved towards its own running mean (+0.5 and -0.5), not the other's.
    assert seen["enc"].mean() > seen["dec"].mean()
