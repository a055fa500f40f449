"""Backbones: every registered one runs forward and backward; torchvision layouts are exact."""

from __future__ import annotations

import pytest
import torch

from csvr.errors import ConfigError
from csvr.models.backbones import backbone_kind, create_backbone, list_backbones
from csvr.models.backbones.r3d import torchvision_state_dict


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_forward_backward_tiny(name):
    torch.manual_seed(0)
    net = create_backbone(name, width=8)
    video = backbone_kind(name) == "video"
    x = torch.randn(2, 3, 8, 32, 32) if video else torch.randn(2, 3, 32, 32)
    y = net(x)
    assert y.dim() == (5 if video else 4)
    assert y.shape[:2] == (2, net.out_channels)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing


def test_registry_names_and_errors():
    assert list_backbones("video") == ["c3d", "r2plus1d_18", "r3d_18", "s3d"]
    assert list_backbones("image") == ["r2d_10"]
    with pytest.raises(ConfigError, match=r"'r3d_50'.*c3d, r2d_10, r2plus1d_18, r3d_18, s3d"):
        create_backbone("r3d_50")
    with pytest.raises(ConfigError, match=r"'depth'.*width, layers"):
        create_backbone("r3d_18", depth=10)


# ----------------------------------------------------------------------------- torchvision layouts
def _bn(prefix, c):
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


def _torchvision_video_resnet(kind: str, layers=(2, 2, 2, 2)) -> list[tuple[str, tuple]]:
    """State-dict (name, shape) list of torchvision's VideoResNet without fc, written from its source."""
    out = []
    if kind == "r3d":
        out += [("stem.0.weight", (64, 3, 3, 7, 7))] + _bn("stem.1", 64)
    else:
        out += [("stem.0.weight", (45, 3, 1, 7, 7))] + _bn("stem.1", 45)
        out += [("stem.3.weight", (64, 45, 3, 1, 1))] + _bn("stem.4", 64)

    def conv(prefix, cin, cout, mid):
        if kind == "r3d":
            return [(f"{prefix}.0.weight", (cout, cin, 3, 3, 3))] + _bn(f"{prefix}.1", cout)
        return ([(f"{prefix}.0.0.weight", (mid, cin, 1, 3, 3))] + _bn(f"{prefix}.0.1", mid)
                + [(f"{prefix}.0.3.weight", (cout, mid, 3, 1, 1))] + _bn(f"{prefix}.1", cout))

    inplanes = 64
    for i, n in enumerate(layers):
        planes = 64 * 2 ** i
        for j in range(n):
            cin = inplanes if j == 0 else planes
            mid = (cin * planes * 27) // (cin * 9 + 3 * planes)
            p = f"layer{i + 1}.{j}"
            out += conv(f"{p}.conv1", cin, planes, mid) + conv(f"{p}.conv2", planes, planes, mid)
            if j == 0 and i > 0:
                out += [(f"{p}.downsample.0.weight", (planes, cin, 1, 1, 1))] + _bn(f"{p}.downsample.1", planes)
        inplanes = planes
    return out


@pytest.mark.parametrize("name,kind,tv_params", [("r3d_18", "r3d", 33_371_472), ("r2plus1d_18", "r2plus1d", 31_505_325)])
def test_torchvision_names_shapes_and_counts(name, kind, tv_params):
    with torch.device("meta"):
        net = create_backbone(name)
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == _torchvision_video_resnet(kind)
    # torchvision's documented num_params, minus its 512 x 400 + 400 fc
    assert sum(p.numel() for p in net.parameters()) == tv_params - (512 * 400 + 400)


def test_torchvision_state_dict_loads_strict_and_exports():
    net = create_backbone("r2plus1d_18", layers=(1, 1, 1, 1))
    spec = _torchvision_video_resnet("r2plus1d", layers=(1, 1, 1, 1))
    g = torch.Generator().manual_seed(0)
    tv_sd = {k: (torch.randint(0, 5, s) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g))
             for k, s in spec}
    net.load_state_dict(tv_sd, strict=True)
    assert torch.equal(net.state_dict()["layer3.0.conv2.0.3.weight"], tv_sd["layer3.0.conv2.0.3.weight"])
    fc = torch.nn.Linear(512, 101)
    out = torchvision_state_dict(net, fc=fc)
    assert list(out)[:-2] == [k for k, _ in spec] and list(out)[-2:] == ["fc.weight", "fc.bias"]
    assert torch.equal(out["fc.weight"], fc.weight) and torch.equal(out["stem.3.weight"], tv_sd["stem.3.weight"])
    fresh = torchvision_state_dict(net, num_classes=7)
    assert fresh["fc.weight"].shape == (7, 512) and fresh["fc.bias"].abs().sum() == 0
    assert "fc.weight" not in torchvision_state_dict(net)
    with pytest.raises(ValueError, match="width=8"):
        torchvision_state_dict(create_backbone("r3d_18", width=8))
    with pytest.raises(ValueError, match="num_classes"):
        torchvision_state_dict(net, num_classes=5, fc=fc)


def test_s3d_sizes_and_torchvision_trunk_count():
    with torch.device("meta"):
        plain = create_backbone("s3d", gating=False)
        gated = create_backbone("s3d")
    # torchvision s3d: 8,320,048 parameters including its 1024 -> 400 1x1x1 conv classifier
    assert sum(p.numel() for p in plain.parameters()) == 8_320_048 - (1024 * 400 + 400)
    assert "features.5.branch1.1.0.0.weight" in plain.state_dict()
    assert sum(p.numel() for p in gated.parameters()) == 9_098_000   # S3D-G: Table IX's 9.1M
    # 112 px works: the map is 2x4x4 (torchvision's fixed 2x7x7 pool would fail)
    small = create_backbone("s3d", width=4)
    assert small(torch.randn(1, 3, 16, 112, 112)).shape == (1, 64, 2, 4, 4)


def test_c3d_and_resnet_output_geometry_at_16x112():
    x = torch.randn(1, 3, 16, 112, 112)
    c3d = create_backbone("c3d", width=2)
    assert c3d(x).shape == (1, 16, 2, 7, 7)
    with torch.device("meta"):
        full = create_backbone("c3d", batch_norm=False)
    assert sum(p.numel() for p in full.parameters()) == 27_655_936   # conv1..conv5b of Tran et al.
    assert create_backbone("r3d_18", width=4, layers=(1, 1, 1, 1))(x).shape == (1, 32, 2, 7, 7)
    assert create_backbone("r2d_10", width=4)(x[:, :, 0]).shape == (1, 32, 4, 4)
