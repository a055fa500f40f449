"""S3D / S3D-G (Xie et al. 2018, "Rethinking Spatiotemporal Feature Learning"), torchvision layout.

The trunk is torchvision's ``S3D.features`` (same module tree and parameter names:
``features.0.0.0.weight``, ``features.5.branch1.1.0.0.weight``, ...), returned as a feature map;
torchvision's fixed ``AvgPool3d((2, 7, 7))`` is *not* part of the backbone: the CSVR heads use a
global (adaptive) average pool, so 112x112 inputs (a 2x4x4 final map at 16 frames) work.

``gating=True`` (default) adds S3D-G's self-gating after every inception branch
(``y = sigmoid(W mean_thw(x) + b) * x``, a ``Linear(c, c)`` per branch named
``features.N.gating_bK``), as in the S3D of CoCLR (ref. [155]) and the paper's Table IX: 9.10M
parameters at width 64, against 7.91M without gating (``gating=False`` is exactly torchvision's
S3D trunk, whose state dict minus ``classifier.*`` then loads).

``width`` scales every channel count by ``width / 64`` (rounded, at least 1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from csvr.models.backbones import check_width, register_backbone

# (in, b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out) of torchvision's nine inception blocks.
_INCEPTION = (
    (192, 64, 96, 128, 16, 32, 32),
    (256, 128, 128, 192, 32, 96, 64),
    (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64),
    (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128),
    (832, 256, 160, 320, 32, 128, 128),
    (832, 384, 192, 384, 48, 128, 128),
)


def _bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, eps=0.001, momentum=0.001)  # torchvision's S3D settings


def _conv_bn_relu(cin: int, cout: int, kernel, stride=1, padding=0) -> nn.Sequential:
    """torchvision ``Conv3dNormActivation`` layout: ``0`` conv (no bias), ``1`` BN, ``2`` ReLU."""
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False), _bn(cout),
                         nn.ReLU(inplace=True))


class TemporalSeparableConv(nn.Sequential):
    """1xkxk spatial conv-BN-ReLU then kx1x1 temporal conv-BN-ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int) -> None:
        super().__init__(
            _conv_bn_relu(cin, cout, (1, k, k), (1, stride, stride), (0, padding, padding)),
            _conv_bn_relu(cout, cout, (k, 1, 1), (stride, 1, 1), (padding, 0, 0)),
        )


class SelfGating(nn.Linear):
    """S3D-G feature gating: ``x * sigmoid(W mean_{t,h,w}(x) + b)`` (per sample, per channel)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        w = super().forward(x.mean(dim=(2, 3, 4)))
        return x * w.sigmoid()[:, :, None, None, None]


class SepInceptionBlock3D(nn.Module):
    def __init__(self, cin: int, b0: int, b1m: int, b1: int, b2m: int, b2: int, b3: int, gating: bool) -> None:
        super().__init__()
        self.branch0 = _conv_bn_relu(cin, b0, 1)
        self.branch1 = nn.Sequential(_conv_bn_relu(cin, b1m, 1), TemporalSeparableConv(b1m, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(_conv_bn_relu(cin, b2m, 1), TemporalSeparableConv(b2m, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d((3, 3, 3), stride=1, padding=1), _conv_bn_relu(cin, b3, 1))
        self.gating = gating
        if gating:
            self.gating_b0, self.gating_b1 = SelfGating(b0, b0), SelfGating(b1, b1)
            self.gating_b2, self.gating_b3 = SelfGating(b2, b2), SelfGating(b3, b3)
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: Tensor) -> Tensor:
        outs = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        if self.gating:
            outs = [g(o) for g, o in zip((self.gating_b0, self.gating_b1, self.gating_b2, self.gating_b3), outs)]
        return torch.cat(outs, dim=1)


class S3D(nn.Module):
    """S3D(-G) trunk; ``forward`` returns ``features(x)``: (B, 1024w/64, T/8, H/32, W/32)."""

    def __init__(self, width: int = 64, gating: bool = True) -> None:
        super().__init__()
        check_width(width)
        self.width = width
        self.gating = gating

        def s(c: int) -> int:
            return max(1, round(c * width / 64))

        blocks = []
        cin = s(192)
        for spec in _INCEPTION:
            _, b0, b1m, b1, b2m, b2, b3 = (s(c) for c in spec)
            blocks.append(SepInceptionBlock3D(cin, b0, b1m, b1, b2m, b2, b3, gating))
            cin = blocks[-1].out_channels
        self.features = nn.Sequential(
            TemporalSeparableConv(3, s(64), 7, 2, 3),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            _conv_bn_relu(s(64), s(64), 1),
            TemporalSeparableConv(s(64), s(192), 3, 1, 1),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            blocks[0],
            blocks[1],
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1)),
            blocks[2],
            blocks[3],
            blocks[4],
            blocks[5],
            blocks[6],
            # ceil_mode so that odd sizes (e.g. a 7x7 map at 112 px) keep their last row/frame.
            nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0), ceil_mode=True),
            blocks[7],
            blocks[8],
        )
        self.out_channels = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


@register_backbone("s3d", "video")
def s3d(width: int = 64, gating: bool = True) -> S3D:
    """S3D-G trunk (9.10M parameters at width 64; 7.91M with ``gating=False``)."""
    return S3D(width=width, gating=gating)


__all__ = ["S3D", "SelfGating", "SepInceptionBlock3D", "TemporalSeparableConv", "s3d"]
