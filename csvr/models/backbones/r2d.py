"""R2D-10: a 2D ResNet-10 for I-frames (the paper's I-network), torchvision ``resnet`` names.

``conv1`` (7x7 stride 2) - ``bn1`` - ReLU - ``maxpool`` (3x3 stride 2) - ``layer1..4`` of
:class:`BasicBlock2d` (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``downsample.0/1``), stage widths
``(w, 2w, 4w, 8w)``, one block per stage by default (``layers=(2, 2, 2, 2)`` is ResNet-18, whose
torchvision state dict minus ``fc.*`` then loads). 112x112 -> (8w) x 4 x 4.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from csvr.models.backbones import check_resnet_shape, register_backbone


class BasicBlock2d(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet2d(nn.Module):
    """2D ResNet feature extractor (no avgpool/fc); returns the ``layer4`` map."""

    def __init__(self, layers: Sequence[int] = (1, 1, 1, 1), width: int = 64) -> None:
        super().__init__()
        check_resnet_shape(layers, width)
        self.width = width
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0], 1)
        self.layer2 = self._make_layer(width * 2, layers[1], 2)
        self.layer3 = self._make_layer(width * 4, layers[2], 2)
        self.layer4 = self._make_layer(width * 8, layers[3], 2)
        self.out_channels = width * 8
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        out = [BasicBlock2d(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        out += [BasicBlock2d(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


@register_backbone("r2d_10", "image")
def r2d_10(width: int = 64, layers: Sequence[int] = (1, 1, 1, 1)) -> ResNet2d:
    """R2D-10 (4.90M parameters at width 64)."""
    return ResNet2d(layers=layers, width=width)


__all__ = ["BasicBlock2d", "ResNet2d", "r2d_10"]
