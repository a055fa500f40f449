"""Every head that sits on a backbone, for every method: global average pooling, CSVR's context
heads g^V / g^I and motion head for f_d, and the SimCLR-style projection head of IIC and CVRL.

Paper III-C: ``x_i^* = g^V(x_i^pool)``, ``z_i^* = g^I(z_i^pool)`` with "two-layer MLP heads".
Paper III-B: "we add convolutional layers and MLPs after the last layer in encoder of G_p to
keep the dimension of dynamic motion feature f_d align with static context feature f_s".

One module holds them all, whichever method uses them, so that a head is found in one place and
no method imports another method's model to get one (this module imports torch only).
"""

from __future__ import annotations

from torch import Tensor, nn


def global_average_pool(x: Tensor) -> Tensor:
    """Mean over every dimension after the channel one: (B, C, ...) -> (B, C). Any input size."""
    return x.flatten(2).mean(dim=2) if x.dim() > 2 else x


class ContextHead(nn.Sequential):
    """Two-layer MLP ``Linear(in, hidden) -> ReLU -> Linear(hidden, out)`` (g^V and g^I).

    No BatchNorm: g^I also sees the padding I-frames of a batch (masked out of the loss), which
    must not shift the statistics; f_s is batch-normalised by the integration layer anyway.
    ``hidden`` defaults to ``in_dim``.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None) -> None:
        hidden = in_dim if hidden is None else hidden
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
        self.in_dim, self.out_dim = in_dim, out_dim


class MotionHead(nn.Module):
    """f_d from an encoder layer of G_p: ``Conv1d(k=3) -> BN -> ReLU -> mean over time -> 2-layer MLP``.

    Input (B, C_enc, T_enc) -> output (B, out_dim). ``hidden`` defaults to ``max(C_enc, out_dim)``.
    """

    def __init__(self, in_channels: int, out_dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = max(in_channels, out_dim) if hidden is None else hidden
        self.conv = nn.Sequential(nn.Conv1d(in_channels, hidden, 3, padding=1, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True))
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, h: Tensor) -> Tensor:
        return self.mlp(self.conv(h).mean(dim=2))


def projection_head(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Sequential:
    """MLP projection head (SimCLR/CVRL): ``layers`` linear layers, BN + ReLU between them."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


__all__ = ["ContextHead", "MotionHead", "global_average_pool", "projection_head"]
