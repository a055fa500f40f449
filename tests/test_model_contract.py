"""The one contract for trained models (issue 13): typed checkpoints, build_method, load_encoder
for every checkpoint kind and feature, the encoder's declarations, CSVRModel.generate as the one
forward pass of the generators, one registry style, the contrastive base, and the baseline
losses' documented examples."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from csvr.config import load_config, to_dict
from csvr.data.transforms import MEAN, STD
from csvr.engine.checkpoint import Checkpoint, save_checkpoint
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.model import build_method, load_encoder, load_method, load_trained
from csvr.errors import ConfigError, CsvrError
from csvr.eval.classifier import Supervised, SupervisedConfig
from csvr.models.encoder import BackboneEncoder, Encoder
from csvr.models.features import FEATURE_NAMES, needs_poses
from csvr.utils.registry import Registry

from test_models_csvr import make_batch, tiny_cfg


def _cfg(*extra) -> PretrainConfig:
    return load_config(PretrainConfig, resolve_config_path("tiny-test"), ["train.threads=1", *extra])


def _save(state: dict, run) -> str:
    return str(save_checkpoint(state, run, 1, keep_last=1))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A CSVR pretraining checkpoint as the engine writes it, and the method it holds."""
    torch.manual_seed(0)
    cfg = _cfg()
    method = build_method(cfg)
    state = {"kind": "pretrain", "method": "csvr", "config": to_dict(cfg), "model": method.state_dict(),
             "global_step": 1, "input": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    return _save(state, tmp_path_factory.mktemp("pre")), method


# ----------------------------------------------------------------------------- features and checkpoints
def test_the_feature_names_and_the_poses_rule():
    assert FEATURE_NAMES == ("fi", "fs", "fd", "backbone")
    assert [needs_poses(f) for f in FEATURE_NAMES] == [True, False, True, False]
    with pytest.raises(ValueError, match="valid: fi, fs, fd, backbone"):
        needs_poses("fx")


def test_checkpoint_is_typed_and_older_files_default_to_the_data_layers_normalisation(pretrained, tmp_path):
    path, _ = pretrained
    ckpt = Checkpoint.load(path)
    assert (ckpt.kind, ckpt.method, ckpt.step) == ("pretrain", "csvr", 1)
    assert ckpt.mean == (0.5, 0.5, 0.5) and ckpt.architecture[0] == "csvr" and ckpt.feature is None
    raw = torch.load(path, weights_only=True)
    del raw["input"]  # a checkpoint written before the contract
    old = Checkpoint.from_state(raw, "old.pt")
    assert old.mean == MEAN and old.std == STD
    with pytest.raises(CsvrError, match="lacks kind, config, model"):
        Checkpoint.from_state({"format": "csvr-checkpoint"}, "x.pt")
    with pytest.raises(CsvrError, match="'pretrain' checkpoint, not a finetuned classifier"):
        ckpt.require("finetune", "linear_probe", what="a finetuned classifier")


@pytest.mark.parametrize("feature", FEATURE_NAMES)
def test_load_encoder_of_a_pretraining_checkpoint_declares_the_contract(pretrained, feature):
    path, method = pretrained
    enc = load_encoder(path, feature)
    assert isinstance(enc, Encoder) and enc.feature == feature and enc.needs_poses == needs_poses(feature)
    assert enc.mean == (0.5, 0.5, 0.5) and enc.std == (0.25, 0.25, 0.25)
    b = make_batch(b=2, t=4, h=32)
    enc.eval()
    method.eval()
    with torch.no_grad():
        got = enc.encode(b["clip"], b["poses"], b["pose_conf"])
        want = method.model.encode(b["clip"], b["poses"], b["pose_conf"], feature=feature)
    assert got.shape == (2, enc.out_dim) and torch.equal(got, want)


def test_load_encoder_errors_say_what_was_expected(pretrained, tmp_path):
    path, _ = pretrained
    with pytest.raises(CsvrError, match="its encoder features are fi, fs, fd, backbone, not 'fx'"):
        load_encoder(path, "fx")
    bad = _save({"kind": "export", "config": {}, "model": {}}, tmp_path)
    with pytest.raises(CsvrError, match="'export' checkpoint; expected a pretraining"):
        load_encoder(bad)
    with pytest.raises(ConfigError, match="unknown method 'simclr'"):
        load_encoder(_save({"kind": "pretrain", "method": "simclr", "config": {"method": "simclr"}, "model": {}},
                           tmp_path / "s"))


def test_random_init_is_the_same_architecture_seeded(pretrained):
    path, method = pretrained
    a = load_trained(path, "fs", random_init=True, seed=3)
    b = load_trained(path, "fs", random_init=True, seed=3)
    sa, sb, sm = a.encoder.state_dict(), b.encoder.state_dict(), method.encoder("fs").state_dict()
    assert sa.keys() == sm.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sm[k]) for k in sa if sa[k].is_floating_point())


def test_a_classifier_checkpoint_gives_the_encoder_it_trained(pretrained, tmp_path):
    from csvr.eval.loading import load_model
    from csvr.eval.finetune import load_classifier

    path, _ = pretrained
    arch = Checkpoint.load(path).config["model"]
    mcfg = SupervisedConfig(pretrained=path, feature="fd", arch_method="csvr", arch=arch, num_classes=3,
                            classes=["a", "b", "c"])
    sup = Supervised.build(mcfg)
    assert sup.job_kind == "finetune" and sup.classifier.encoder.feature == "fd"
    state = {"kind": "finetune", "method": "supervised", "config": {"method": "supervised", "model": to_dict(mcfg)},
             "model": sup.state_dict(), "global_step": 4}
    ft = _save(state, tmp_path)
    enc = load_encoder(ft)
    want = sup.classifier.encoder.state_dict()
    assert enc.feature == "fd" and all(torch.equal(v, want[k]) for k, v in enc.state_dict().items())
    with pytest.raises(CsvrError, match="finetuned on feature 'fd'; --feature fs does not match"):
        load_encoder(ft, "fs")
    classifier, raw = load_classifier(ft)
    assert torch.equal(classifier.head.weight, sup.classifier.head.weight) and raw["kind"] == "finetune"
    loaded = load_model(ft)
    assert (loaded.kind, loaded.method, loaded.feature, loaded.classes) == ("finetune", "csvr", "fd", ["a", "b", "c"])
    assert loaded.backbone is None  # a pose-only encoder has no V-network


def test_load_method_round_trip(pretrained):
    path, method = pretrained
    again, ckpt = load_method(path)
    assert ckpt.kind == "pretrain" and again.state_dict().keys() == method.state_dict().keys()
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in again.state_dict().items())


# ----------------------------------------------------------------------------- generate()
def test_generate_is_the_forward_pass_the_losses_use(monkeypatch):
    """The report's pictures come from CSVRModel.generate; it composes the same pieces
    compute_losses calls (generate_poses, generate_video), with noise drawn in the same order."""
    from csvr.models.csvr_model import CSVRModel
    from csvr.models.heads import global_average_pool
    from csvr.models.pose_gan import generator_input, sequence_to_poses

    torch.manual_seed(0)
    model = CSVRModel(tiny_cfg()).eval()
    b = make_batch(b=2, t=4, h=32)
    with torch.no_grad():
        out = model.generate(b["clip"], b["poses"], b["pose_conf"], 4, generator=torch.Generator().manual_seed(5))
        # the reference: the forward pass written out (what eval/plots.py did before issue 13)
        g = torch.Generator().manual_seed(5)
        pcfg = model.cfg.pose
        p_in = generator_input(b["poses"], b["pose_conf"], pcfg)
        feats = model.pose_generator.encode(p_in)
        z = torch.randn(2, pcfg.noise_dim, generator=g)
        fake = model.pose_generator.decode(feats[-1], z, 4, p_in[:, : 2 * pcfg.num_joints, -1:])
        f_s = model.context_head_v(global_average_pool(model.v_network(b["clip"])))
        f_i = model.integration(f_s, model.motion_head(feats[pcfg.fd_layer_index - 1]))
        # z_v ~ U(-1, 1) (TGANv2)
        rec = model.reconstructor(torch.rand(2, model.cfg.video.noise_dim, generator=g) * 2 - 1, f_i)
        pred = model.predictor(torch.rand(2, model.cfg.video.noise_dim, generator=g) * 2 - 1, f_i)
    assert torch.equal(out.future_poses, sequence_to_poses(fake))
    assert torch.equal(out.videos["r"], rec) and torch.equal(out.videos["p"], pred)
    calls = []
    for name in ("generate_poses", "generate_video"):
        real = getattr(CSVRModel, name)
        monkeypatch.setattr(CSVRModel, name, lambda self, *a, _n=name, _r=real, **k: calls.append(_n) or _r(self, *a, **k))
    with torch.no_grad():  # eval mode: the dense generators, as generate() runs them
        model.eval().compute_losses(b)
    assert calls == ["generate_poses", "generate_video", "generate_video"]


# ----------------------------------------------------------------------------- registries
def test_one_registry_style_lists_every_kind():
    from csvr.data.layouts import LAYOUTS
    from csvr.methods.base import METHODS
    from csvr.models.backbones import BACKBONES
    from csvr.pose.sources import POSE_SOURCES, get_source

    assert METHODS.names() == ["csvr", "cvrl", "iic"]
    assert BACKBONES.names() == ["c3d", "r2d_10", "r2plus1d_18", "r3d_18", "s3d"]
    assert POSE_SOURCES.names() == ["mediapipe", "openpose-json", "mmaction-pkl"]  # the CLI's order
    assert LAYOUTS.names() == ["ucf101", "hmdb51", "folder", "csv"]
    assert get_source("openpose-json").name == "openpose-json"
    with pytest.raises(CsvrError, match="unknown pose source 'x' .choose from mediapipe, openpose-json, mmaction-pkl"):
        get_source("x")


def test_adding_an_implementation_is_adding_a_module(tmp_path, monkeypatch):
    pkg = tmp_path / "plugins_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from csvr.utils.registry import Registry\nREG = Registry('widget', __name__)\n")
    for name in ("round", "square"):
        (pkg / f"{name}.py").write_text(f"from plugins_pkg import REG\n\n@REG.register('{name}', sides={len(name)})\n"
                                        f"def make():\n    return '{name}'\n")
    (pkg / "_private.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import plugins_pkg

    reg: Registry = plugins_pkg.REG
    assert reg.names() == ["round", "square"] and reg.get("square")() == "square" and reg.info("round") == {"sides": 5}
    with pytest.raises(ConfigError, match="unknown widget 'oval'; valid widgets: round, square"):
        reg.get("oval")


# ----------------------------------------------------------------------------- contrastive base
@pytest.mark.parametrize("name", ["iic", "cvrl"])
def test_the_contrastive_baselines_share_backbone_projection_and_encoder(name):
    from csvr.methods import get_method
    from csvr.methods.contrastive import ContrastiveMethod

    cls = get_method(name)
    assert issubclass(cls, ContrastiveMethod) and cls.features == ("backbone",)
    method = build_method(_cfg(f"method={name}", "model={backbone: {name: r3d_18, width: 4, layers: [1,1,1,1]}}"))
    enc = method.encoder()
    assert isinstance(enc, BackboneEncoder) and enc.feature == "backbone" and not enc.needs_poses
    clip = torch.randn(2, 3, 4, 32, 32)
    method.eval()
    enc.eval()
    with torch.no_grad():
        assert torch.equal(enc(clip), method.v_network(clip).mean(dim=(2, 3, 4)))
        assert torch.equal(method.project(clip), method.projection(enc(clip)))
    with pytest.raises(ValueError, match="unknown feature 'fi' of method"):
        method.encoder("fi")


def test_the_baseline_losses_document_a_worked_example():
    import csvr.losses.baselines as baselines

    result = doctest.testmod(baselines, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0


def test_supervised_is_not_a_pretraining_method():
    with pytest.raises(ConfigError, match="unknown method 'supervised'"):
        build_method(_cfg("method=supervised"))
    assert not Supervised.pretext and np.isclose(SupervisedConfig().dropout, 0.3)


def test_a_checkpoint_whose_video_generators_predate_this_csvr_still_gives_its_encoders(pretrained, tmp_path, caplog):
    """Issue 23 changed the video GANs, not the encoders: an older checkpoint's f_i / f_s / f_d
    weights still load for downstream use (a warning names what was not loaded); the whole model,
    or an encoder whose own weights differ, is still refused with one message."""
    import logging

    path, method = pretrained
    raw = torch.load(path, weights_only=True)
    state = dict(raw["model"])
    gen = [k for k in state if k.startswith("model.reconstructor.") and k.endswith("fc.weight")][0]
    state[gen] = torch.zeros(3, 3)                                         # an older shape
    state["model.reconstructor_critic.conv.weight"] = torch.zeros(1)      # an older module
    del state["model.video_steps"]                                        # an older csvr had no counter
    old = _save({**raw, "model": state}, tmp_path / "old")
    with caplog.at_level(logging.WARNING):
        enc = load_encoder(old, "fi")
    assert "do not fit" in caplog.text and "fi encoder is loaded" in caplog.text
    want = method.encoder("fi").state_dict()
    assert all(torch.equal(v, want[k]) for k, v in enc.state_dict().items())
    with pytest.raises(CsvrError, match="does not fit"):
        load_method(old)                                                   # the whole model: strict
    state["model.v_network.stem.0.weight"] = torch.zeros(1)                # the encoder's own weights
    with pytest.raises(CsvrError, match="does not fit"):
        load_encoder(_save({**raw, "model": state}, tmp_path / "bad"), "fi")
