"""Every config shipped in the package (csvr/configs, linked as configs/ in the source tree) is
valid against the typed configs (no unknown keys, no bad values), so a user can run any of them as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from csvr.config import from_dict, load_config
from csvr.engine.config import PretrainConfig
from csvr.eval.finetune import FinetuneConfig
from csvr.methods import get_method
from csvr.eval.classifier import SupervisedConfig

CONFIGS = Path(__file__).resolve().parents[1] / "csvr" / "configs"
PRETRAIN = sorted(p for p in (CONFIGS / "pretrain").rglob("*.yaml") if p.name != "base.yaml")
FINETUNE = sorted((CONFIGS / "finetune").glob("*.yaml"))


@pytest.mark.parametrize("path", PRETRAIN, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_pretrain_configs_are_valid(path):
    cfg = load_config(PretrainConfig, path)
    method = get_method(cfg.method)
    from_dict(method.config_class, cfg.model, where="model")
    for stage in cfg.train.stages:
        assert stage.name in method.stages


@pytest.mark.parametrize("path", FINETUNE, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_finetune_configs_are_valid(path):
    cfg = load_config(FinetuneConfig, path)
    from_dict(SupervisedConfig, cfg.model, where="model")


def test_paper_rows_have_the_paper_settings():
    rows = [p for p in (CONFIGS / "pretrain" / "paper").glob("*-*.yaml") if load_config(PretrainConfig, p).method == "csvr"]
    assert len(rows) == 8  # Table VI: {ucf101, kinetics400} x {c3d, r3d, r2plus1d, s3d}
    for path in rows:
        cfg = load_config(PretrainConfig, path)
        c = cfg.data.clip
        assert (c.frames, c.stride, c.size, cfg.train.batch_size) == (16, 4, 112, 16)
        assert (cfg.optim.lr_per_sample, cfg.optim.momentum, cfg.optim.weight_decay) == (0.0005, 0.9, 0.005)
        assert cfg.model["sigma_p"] == cfg.model["sigma_c"] == 0.75
        assert [s.epochs for s in cfg.train.stages if s.name == "joint"] == [200]
    ucf = load_config(FinetuneConfig, CONFIGS / "finetune" / "ucf101.yaml")
    hmdb = load_config(FinetuneConfig, CONFIGS / "finetune" / "hmdb51.yaml")
    assert (ucf.optim.lr_per_sample, ucf.optim.weight_decay, ucf.train.batch_size) == (0.0001, 0.003, 32)
    assert (hmdb.optim.lr_per_sample, hmdb.optim.weight_decay) == (0.0002, 0.002)
    assert ucf.model["dropout"] == 0.3 and ucf.eval.clips == 10


def test_command_line_overrides_are_checked_once_for_every_command(capsys):
    from csvr.cli import main
    from csvr.config import command_line_overrides

    assert command_line_overrides(["a.b=1"]) == ["a.b=1"]
    for argv in (["pretrain", "--config", "tiny-test", "oops"], ["finetune", "--config", "tiny-test", "oops"]):
        assert main(argv) == 2
        assert "unexpected argument 'oops': overrides look like key.sub=value" in capsys.readouterr().err


def test_a_partly_set_section_keeps_its_fields_own_defaults():
    """Setting one key of a section whose default is not its class's (``optim.video_generator``:
    TGANv2's betas and a constant schedule; ``model.i_network``: r2d_10) used to rebuild the
    section from the class's defaults: ``optim.video_generator.lr=1e-3`` silently trained with
    betas (0.5, 0.999) and the run-wide cosine."""
    from csvr.config import from_dict, load_config
    from csvr.engine.commands import resolve_config_path
    from csvr.engine.config import OptimConfig, PretrainConfig
    from csvr.models.csvr_model import CSVRModelConfig

    o = from_dict(OptimConfig, {"video_generator": {"lr": 1e-3}})
    assert (o.video_generator.lr, tuple(o.video_generator.betas), o.video_generator.schedule) == (1e-3, (0.0, 0.9),
                                                                                                  "constant")
    assert o.generator.betas == (0.5, 0.999)                     # a class default stays one
    m = from_dict(CSVRModelConfig, {"i_network": {"width": 16}})
    assert (m.i_network.name, m.i_network.width) == ("r2d_10", 16)
    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"), ["optim.video_critic.lr=0.003"])
    assert cfg.optim.video_critic.schedule == "constant" and tuple(cfg.optim.video_critic.betas) == (0.0, 0.9)
