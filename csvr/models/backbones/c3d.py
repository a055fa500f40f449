"""C3D (Tran et al. 2015) convolutional feature extractor: conv1 ... conv5b.

Layout: conv1 (w) - pool1 (1x2x2) - conv2 (2w) - pool2 - conv3a/3b (4w) - pool3 - conv4a/4b (8w)
- pool4 - conv5a/5b (8w), every conv 3x3x3 stride 1 padding 1, pools 2x2x2 (pool1 1x2x2). At 16x112x112
the output of conv5b is (8w) x 2 x 7 x 7, returned before ``pool5``.

What is *not* here: ``pool5``, ``fc6`` (8192->4096), ``fc7`` (4096->4096) and ``fc8`` of the
Sports-1M classifier. The feature-map contract of the V-network (global average pooling, then the
context head) replaces them, so parameter counts and FLOPs of this module are conv1-conv5b only
(27.7M parameters at width 64; the original fc6+fc7 would add 50.3M).

``batch_norm=True`` (default) puts a BatchNorm after every convolution (bias-free convs), as the
C3D used by self-supervised work does (e.g. VCOP, DSM); ``batch_norm=False`` is the original
bias + ReLU network.
"""

from __future__ import annotations

from torch import Tensor, nn

from csvr.models.backbones import check_width, register_backbone

_CONVS = (("conv1", 1), ("conv2", 2), ("conv3a", 4), ("conv3b", 4), ("conv4a", 8), ("conv4b", 8),
          ("conv5a", 8), ("conv5b", 8))
_POOL_AFTER = {"conv1": (1, 2, 2), "conv2": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2)}


class C3D(nn.Module):
    """C3D conv1-conv5b; ``forward`` returns the conv5b map (B, 8w, T/8, H/16, W/16)."""

    def __init__(self, width: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        check_width(width)
        self.width = width
        self.batch_norm = batch_norm
        cin = 3
        names = []
        for name, mult in _CONVS:
            cout = width * mult
            setattr(self, name, nn.Conv3d(cin, cout, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                setattr(self, "bn" + name[4:], nn.BatchNorm3d(cout))
            if name in _POOL_AFTER:
                k = _POOL_AFTER[name]
                setattr(self, "pool" + name[4], nn.MaxPool3d(kernel_size=k, stride=k))
            names.append(name)
            cin = cout
        self._names = tuple(names)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        for name in self._names:
            x = getattr(self, name)(x)
            if self.batch_norm:
                x = getattr(self, "bn" + name[4:])(x)
            x = self.relu(x)
            if name in _POOL_AFTER:
                x = getattr(self, "pool" + name[4])(x)
        return x


@register_backbone("c3d", "video")
def c3d(width: int = 64, batch_norm: bool = True) -> C3D:
    """C3D conv1-conv5b (27.66M parameters at width 64 with BN, no fc6/fc7)."""
    return C3D(width=width, batch_norm=batch_norm)


__all__ = ["C3D", "c3d"]
