"""R3D-18 (Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions"), torchvision layout.

The module tree and parameter names are those of ``torchvision.models.video.r3d_18`` without
``avgpool``/``fc``: ``stem.0`` (Conv3d 3x7x7, stride 1x2x2), ``stem.1`` (BN), ``layer1..4`` of
:class:`BasicBlock` (``conv1.0`` conv, ``conv1.1`` BN, ``conv2.0`` conv, ``conv2.1`` BN,
``downsample.0`` 1x1x1 conv, ``downsample.1`` BN). A torchvision ``r3d_18()`` state dict minus
``fc.*`` therefore loads with ``strict=True``, and :func:`torchvision_state_dict` goes the other way.

:class:`VideoResNet` is shared with :mod:`csvr.models.backbones.r2plus1d` (only the stem and the
convolution builder differ, as in torchvision).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import Tensor, nn

from csvr.models.backbones import check_resnet_shape, register_backbone


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1) -> None:
        super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride, padding=1, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class BasicBlock(nn.Module):
    """Two-convolution residual block with torchvision's names.

    ``midplanes`` is torchvision's formula ``(in*out*27) // (in*9 + 3*out)`` (used only by the
    (2+1)D builder, which keeps the parameter count of the full 3D block); both convolutions of a
    block use the same value, computed from the block's input and output widths.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_builder: type, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        self.conv1 = nn.Sequential(conv_builder(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + residual)


def r3d_stem(width: int) -> nn.Sequential:
    """Conv3d(3, width, 3x7x7, stride 1x2x2) + BN + ReLU (torchvision ``BasicStem``)."""
    return nn.Sequential(
        nn.Conv3d(3, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


class VideoResNet(nn.Module):
    """torchvision's ``VideoResNet`` without ``avgpool``/``fc``; returns the ``layer4`` map.

    Stage widths are ``(w, 2w, 4w, 8w)`` for ``width=w``; stages 2-4 downsample by 2 in time and
    space (so 16x112x112 -> 2x7x7 with 8w channels).
    """

    def __init__(self, stem: nn.Module, conv_builder: type, layers: Sequence[int], width: int) -> None:
        super().__init__()
        check_resnet_shape(layers, width)
        self.width = width
        self.layers_cfg = tuple(int(n) for n in layers)
        self.conv_builder = conv_builder
        self.inplanes = width
        self.stem = stem
        self.layer1 = self._make_layer(conv_builder, width, layers[0], stride=1)
        self.layer2 = self._make_layer(conv_builder, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(conv_builder, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(conv_builder, width * 8, layers[3], stride=2)
        self.out_channels = width * 8 * BasicBlock.expansion
        _init_video_resnet(self)

    def _make_layer(self, conv_builder: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            ds_stride = conv_builder.get_downsample_stride(stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * BasicBlock.expansion, kernel_size=1, stride=ds_stride, bias=False),
                nn.BatchNorm3d(planes * BasicBlock.expansion),
            )
        blocks_ = [BasicBlock(self.inplanes, planes, conv_builder, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        blocks_ += [BasicBlock(self.inplanes, planes, conv_builder) for _ in range(1, blocks)]
        return nn.Sequential(*blocks_)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def _init_video_resnet(model: nn.Module) -> None:
    # torchvision's initialisation, so that from-scratch runs match torchvision's.
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def torchvision_state_dict(backbone: VideoResNet, num_classes: int | None = None,
                           fc: nn.Linear | None = None) -> "OrderedDict[str, Tensor]":
    """State dict that torchvision's ``r3d_18()`` / ``r2plus1d_18()`` loads with ``strict=True``.

    The backbone's own entries keep their names; ``fc.weight``/``fc.bias`` come from ``fc`` when
    given, else from a new, untrained classifier with ``num_classes`` outputs initialised as
    torchvision does (normal std 0.01, zero bias). With neither, the dict has no ``fc.*`` entries
    (load it into torchvision with ``strict=False``). Only ``width=64`` backbones have a
    torchvision counterpart (torchvision's VideoResNet hard-codes 64 base channels).
    """
    if not isinstance(backbone, VideoResNet):
        raise TypeError(f"expected an r3d_18/r2plus1d_18 backbone (VideoResNet), got {type(backbone).__name__}")
    if backbone.width != 64:
        raise ValueError(f"torchvision's VideoResNet has 64 base channels; this backbone has width={backbone.width}")
    sd: OrderedDict[str, Tensor] = OrderedDict((k, v.detach().clone()) for k, v in backbone.state_dict().items())
    if fc is None and num_classes is not None:
        ref = next(iter(sd.values()))
        fc = nn.Linear(backbone.out_channels, num_classes, device=ref.device, dtype=ref.dtype)
        nn.init.normal_(fc.weight, 0, 0.01)
        nn.init.zeros_(fc.bias)
    if fc is not None:
        if fc.in_features != backbone.out_channels:
            raise ValueError(f"fc takes {fc.in_features} features; the backbone gives {backbone.out_channels}")
        if num_classes is not None and fc.out_features != num_classes:
            raise ValueError(f"fc has {fc.out_features} outputs but num_classes={num_classes}")
        sd["fc.weight"] = fc.weight.detach().clone()
        sd["fc.bias"] = fc.bias.detach().clone()
    return sd


@register_backbone("r3d_18", "video")
def r3d_18(width: int = 64, layers: Sequence[int] = (2, 2, 2, 2)) -> VideoResNet:
    """R3D-18: 33.17M parameters at ``width=64`` (torchvision's 33.37M minus the 400-way fc)."""
    return VideoResNet(r3d_stem(width), Conv3DSimple, layers, width)


__all__ = ["BasicBlock", "Conv3DSimple", "VideoResNet", "r3d_18", "r3d_stem", "torchvision_state_dict"]
