"""R(2+1)D-18 (Tran et al. 2018), torchvision layout.

Same :class:`~csvr.models.backbones.r3d.VideoResNet` as R3D-18 with torchvision's
``R2Plus1dStem`` (``stem.0`` Conv3d 3->45 1x7x7, ``stem.1`` BN, ``stem.3`` Conv3d 45->64 3x1x1,
``stem.4`` BN) and :class:`Conv2Plus1D` blocks (``conv1.0.0`` spatial 1x3x3 conv to ``midplanes``,
``conv1.0.1`` BN, ``conv1.0.3`` temporal 3x1x1 conv, ``conv1.1`` BN, ...), with torchvision's
``midplanes = (in*out*27) // (in*9 + 3*out)``. A torchvision ``r2plus1d_18()`` state dict minus
``fc.*`` loads with ``strict=True``; :func:`torchvision_state_dict` exports the other way.

At ``width != 64`` every channel count is scaled, the stem's 45 becomes ``round(45*width/64)``.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from csvr.models.backbones import register_backbone
from csvr.models.backbones.r3d import VideoResNet, torchvision_state_dict


class Conv2Plus1D(nn.Sequential):
    """(2+1)D factorised convolution: 1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1),
                      bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0),
                      bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


def r2plus1d_stem(width: int) -> nn.Sequential:
    """torchvision's ``R2Plus1dStem`` (45 mid channels at width 64)."""
    mid = max(1, round(45 * width / 64))
    return nn.Sequential(
        nn.Conv3d(3, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


@register_backbone("r2plus1d_18", "video")
def r2plus1d_18(width: int = 64, layers: Sequence[int] = (2, 2, 2, 2)) -> VideoResNet:
    """R(2+1)D-18: 31.30M parameters at ``width=64`` (torchvision's 31.51M minus the 400-way fc).

    ``layers=(1, 1, 1, 1)`` gives a torchvision-style R(2+1)D-10 (12.49M). The 14.37M R(2+1)D-10
    of VCOP-style self-supervised code uses another mid-channel rule; see
    ``benchmarks/model_cost.py`` for both and for the paper's Table IX.
    """
    return VideoResNet(r2plus1d_stem(width), Conv2Plus1D, layers, width)


__all__ = ["Conv2Plus1D", "r2plus1d_18", "r2plus1d_stem", "torchvision_state_dict"]
