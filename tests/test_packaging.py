"""The package carries its presets (issue 14, item 9): a wheel built from the source holds every
YAML file of ``csvr/configs``, and an install of that wheel resolves presets from itself through
:mod:`importlib.resources`, with no source tree in sight."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "csvr" / "configs"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline (no build isolation) from a copy of the tree, so the build's
    ``build/`` and ``*.egg-info`` never land in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO / "csvr", src / "csvr", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    out = tmp / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "-q", str(src), "-w", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("csvr-*.whl")
    return whl


def test_the_source_trees_configs_folder_is_the_packages():
    """configs/ (what older docs and scripts name) still works in a checkout: a link to csvr/configs."""
    assert (REPO / "configs").resolve() == PRESETS.resolve()
    assert (REPO / "configs" / "pretrain" / "small-cpu.yaml").is_file()


def test_the_wheel_ships_every_preset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(str(p.relative_to(REPO)) for p in PRESETS.rglob("*.yaml"))
    assert len(presets) >= 21  # 5 finetune, 5 pretrain, 11 paper (base, 8 CSVR rows, IIC, CVRL) at the time of writing
    assert [p for p in presets if p not in names] == []
    assert "csvr/configs/pretrain/paper/ucf101-r3d-cvrl.yaml" in names


def test_an_installed_wheel_resolves_presets_from_the_package(wheel, tmp_path):
    """Unpack the wheel (what pip does for a pure-Python wheel) and resolve presets in a fresh
    interpreter whose working directory is not the source tree: every path must lie inside the
    install, and ``inherit:`` between presets must work there too."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import csvr, json, importlib.resources as r\n"
        "from csvr.config import load_config\n"
        "from csvr.engine.commands import resolve_config_path, CONFIG_DIR\n"
        "from csvr.engine.config import PretrainConfig\n"
        "cfg = load_config(PretrainConfig, resolve_config_path('ucf101-r3d'))\n"  # inherits paper/base.yaml
        "print(json.dumps({'package': csvr.__file__, 'resources': str(r.files('csvr') / 'configs'),\n"
        "  'config_dir': str(CONFIG_DIR),\n"
        "  'paths': [str(resolve_config_path(n)) for n in ('small-cpu', 'paper/ucf101-r3d', 'ucf101-r3d-iic')],\n"
        "  'finetune': str(resolve_config_path('small-cpu', 'finetune')),\n"
        "  'row': [cfg.method, cfg.model['backbone']['name'], cfg.data.clip.frames, cfg.train.stages[-1].epochs]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)  # ahead of the checkout's editable install
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    inst = site / "csvr"
    assert got["package"] == str(inst / "__init__.py")
    assert got["resources"] == got["config_dir"] == str(inst / "configs")
    assert got["paths"] == [str(inst / "configs" / "pretrain" / p) for p in
                            ("small-cpu.yaml", "paper/ucf101-r3d.yaml", "paper/ucf101-r3d-iic.yaml")]
    assert got["finetune"] == str(inst / "configs" / "finetune" / "small-cpu.yaml")
    assert got["row"] == ["csvr", "r3d_18", 16, 200]
