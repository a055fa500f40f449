"""The pretraining engine: typed configs, determinism, exact resume after SIGKILL, non-finite
losses, DDP on CPU (gloo), and the IIC / CVRL baselines."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from csvr.cli import main
from csvr.config import load_config
from csvr.engine.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.pretrain import ResumableSampler, TrainingDiverged, learning_rate, pretrain
from csvr.errors import ConfigError, CsvrError

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "CSVR_PROGRESS": "0", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def tiny_cfg(ds, out, *extra) -> PretrainConfig:
    return load_config(PretrainConfig, resolve_config_path("tiny-test"),
                       [f"data.manifest={ds['manifest']}", f"data.pose_cache={ds['poses']}", f"out={out}",
                        "train.threads=1", *extra])


def losses(run: Path) -> list[tuple[int, float]]:
    with open(run / "metrics.csv") as f:
        return [(int(r["step"]), float(r["total"])) for r in csv.DictReader(f)]


def test_unknown_config_key_is_one_clear_line(tiny_synth, capsys):
    rc = main(["pretrain", "--config", "tiny-test", "data.workrs=2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "unknown config key 'data.workrs'" in err[0] and "did you mean 'data.workers'" in err[0]
    rc = main(["pretrain", "--config", "tiny-test", "model.backbone.nam=c3d"])
    err = capsys.readouterr().err
    assert rc == 2 and "model.backbone.nam" in err and "name" in err
    rc = main(["pretrain", "--config", "tiny-test", "--method", "simclr"])
    assert rc == 2 and "valid methods: csvr, cvrl, iic" in capsys.readouterr().err
    rc = main(["pretrain", "--config", "no-such-config"])
    assert rc == 2 and "tiny-test" in capsys.readouterr().err


def test_lr_scaling_rule():
    cfg = load_config(PretrainConfig, None, ["train.batch_size=16", "train.accumulate=2"])
    assert learning_rate(cfg, world=4) == pytest.approx(0.0005 * 16 * 4 * 2)
    cfg = load_config(PretrainConfig, None, ["optim.lr=0.1"])
    assert learning_rate(cfg, world=8) == 0.1


def test_resumable_sampler_partition_and_start():
    full = [ResumableSampler(10, 0, 3, r, 2).order() for r in range(2)]
    assert sorted(full[0] + full[1]) == sorted(np.random.default_rng([0, 3]).permutation(10).tolist())
    assert set(full[0]).isdisjoint(full[1]) and len(full[0]) == 5
    assert list(ResumableSampler(10, 0, 3, 1, 2, start=2)) == full[1][2:]
    assert ResumableSampler(10, 0, 4).order() != ResumableSampler(10, 0, 3).order()


def test_determinism_and_outputs(tiny_synth, tmp_path):
    a = pretrain(tiny_cfg(tiny_synth, tmp_path / "a"))
    pretrain(tiny_cfg(tiny_synth, tmp_path / "b"))
    la, lb = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert len(la) == 9 and la == lb  # same seed and config: identical losses at every step
    assert [s["stage"] for s in a["stages"]] == ["pose", "context", "video", "joint"]
    for name in ("config.yaml", "epochs.csv", "summary.json"):
        assert (tmp_path / "a" / name).is_file()
    with open(tmp_path / "a" / "epochs.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"context_top1", "pose_mse", "video_r_mse", "video_p_mse"} <= set(rows[-1])
    state = load_checkpoint(list_checkpoints(tmp_path / "a")[-1])
    assert state["global_step"] == 9 and state["stage"] == "joint" and state["method"] == "csvr"
    assert len(list_checkpoints(tmp_path / "a")) <= 3  # keep_last
    c = pretrain(tiny_cfg(tiny_synth, tmp_path / "c", "train.seed=1"))
    assert losses(tmp_path / "c") != la and c["global_step"] == 9
    with pytest.raises(CsvrError, match="--resume"):
        pretrain(tiny_cfg(tiny_synth, tmp_path / "a"))


def _kill_run(cfg_args: list[str], run: Path, kills: int, rng: np.random.Generator) -> None:
    """Start `csvr pretrain` and SIGKILL it `kills` times at random moments after checkpoints
    appear, resuming in between."""
    cmd = [sys.executable, "-m", "csvr", "pretrain", "--config", "tiny-test", *cfg_args, f"out={run}"]
    for k in range(kills):
        proc = subprocess.Popen(cmd + (["--resume"] if k else []), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        n0 = len(list_checkpoints(run))
        deadline = time.time() + 120
        while len(list_checkpoints(run)) <= n0 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 0.6)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        found = latest_checkpoint(run)
        assert found is not None  # never an unloadable latest checkpoint
        assert torch.load(found[0], weights_only=True)["format"] == "csvr-checkpoint"
    rc = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr[-2000:]


@pytest.mark.slow
def test_sigkill_then_resume_continues_the_same_loss_curve(tiny_synth, tmp_path):
    args = [f"data.manifest={tiny_synth['manifest']}", f"data.pose_cache={tiny_synth['poses']}", "train.threads=1",
            "train.ckpt_every_steps=1"]
    ref = tmp_path / "ref"
    pretrain(tiny_cfg(tiny_synth, ref, "train.ckpt_every_steps=1"))
    run = tmp_path / "killed"
    _kill_run(args, run, kills=2, rng=np.random.default_rng(0))
    got, want = losses(run), losses(ref)
    assert [s for s, _ in got] == [s for s, _ in want]  # no duplicated or missing steps after resume
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-5, atol=1e-6)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(d))
    return out


def _run_with_workers(tiny_synth, run: Path) -> tuple[subprocess.Popen, list[int]]:
    """`csvr pretrain` with 2 data-loader workers in a session of its own, once its first
    checkpoint exists and its workers are running: (process, worker pids)."""
    cmd = [sys.executable, "-m", "csvr", "pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}",
           f"data.pose_cache={tiny_synth['poses']}", "train.threads=1", "data.workers=2", "train.batch_size=2",
           "train.stages=[{name: joint, epochs: 100, max_steps: null}]", "train.ckpt_every_steps=3", f"out={run}"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and proc.poll() is None:
        workers = _children(proc.pid) if list_checkpoints(run) else []
        if workers:
            break
        time.sleep(0.05)
    assert workers, "the run never reached a checkpoint with its data-loader workers running"
    return proc, workers


def test_sigterm_to_the_process_group_checkpoints_and_ends_with_one_message(tiny_synth, tmp_path):
    """SLURM pre-emption and `kill -TERM -PGID` reach the data-loader workers too: the workers
    leave the signal to the main process, which finishes its step, checkpoints and says so."""
    proc, _ = _run_with_workers(tiny_synth, tmp_path / "term")
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    step = int(lines[0].split("stopped by a signal at step ")[1].split(";")[0])
    assert "the checkpoint is saved, continue with --resume" in lines[0]
    path, state = latest_checkpoint(tmp_path / "term")
    assert state["global_step"] == step


def test_a_worker_killed_alone_ends_the_run_with_one_message_and_the_last_checkpoint_intact(tiny_synth, tmp_path):
    """The out-of-memory killer takes one data-loader worker (SIGKILL): one clear line, exit 2,
    and the latest checkpoint still loads (resume continues from it)."""
    proc, workers = _run_with_workers(tiny_synth, tmp_path / "oom")
    os.kill(workers[0], signal.SIGKILL)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert "a data-loader worker died at step" in lines[0] and "out-of-memory killer" in lines[0]
    path, state = latest_checkpoint(tmp_path / "oom")
    assert str(path) in lines[0] and "is intact: continue with --resume" in lines[0]
    assert state["format"] == "csvr-checkpoint"


def test_nonfinite_losses_are_skipped_then_stop_with_last_good_checkpoint(tiny_synth, tmp_path, monkeypatch,
                                                                          capsys):
    """Steps 3 and 5.. give NaN: step 3 is skipped and reported, training goes on; from step 5 on
    the run stops after max_nonfinite in a row, and the latest checkpoint is the good step 4."""
    from csvr.methods.cvrl import CVRL

    real = CVRL.training_step
    calls = {"n": 0}

    def poisoned(self, batch, stage):
        calls["n"] += 1
        out = real(self, batch, stage)
        if calls["n"] == 3 or calls["n"] >= 5:
            out.total = out.total * float("nan")
        return out

    monkeypatch.setattr(CVRL, "training_step", poisoned)
    cfg = tiny_cfg(tiny_synth, tmp_path / "nan", "method=cvrl", "train.max_nonfinite=2", "train.ckpt_every_steps=1",
                   "model={backbone: {name: r3d_18, width: 4, layers: [1, 1, 1, 1]}, proj_dim: 8}",
                   "train.stages=[{name: main, epochs: 20}]")
    with pytest.raises(TrainingDiverged, match="2 consecutive non-finite losses"):
        pretrain(cfg)
    out = capsys.readouterr().out
    assert "non-finite loss at step 2" in out  # step indices are 0-based before the increment
    path, state = latest_checkpoint(tmp_path / "nan")
    assert state["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert [s for s, _ in losses(tmp_path / "nan")] == [1, 2, 4]  # the skipped step logs no loss


@pytest.mark.parametrize("method", ["iic", "cvrl"])
def test_baselines_train_on_the_same_engine(tiny_synth, tmp_path, method):
    cfg = tiny_cfg(tiny_synth, tmp_path / method, f"method={method}",
                   "model={backbone: {name: r3d_18, width: 4, layers: [1, 1, 1, 1]}, proj_dim: 8}",
                   "train.stages=[{name: main, epochs: 1, max_steps: 2}]")
    s = pretrain(cfg)
    assert s["global_step"] == 2 and s["nonfinite_steps"] == 0
    state = load_checkpoint(list_checkpoints(tmp_path / method)[-1])
    assert state["method"] == method and any(k.startswith("v_network.") for k in state["model"])


@pytest.mark.slow
def test_ddp_two_processes_gloo_identical_parameters(tiny_synth, tmp_path):
    script = REPO / "tests" / "ddp_worker.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(script), str(tiny_synth["manifest"]), str(tiny_synth["poses"]), str(tmp_path / "ddp")]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    p0 = torch.load(tmp_path / "ddp" / "params-rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "ddp" / "params-rank1.pt", weights_only=True)
    assert p0.keys() == p1.keys() and len(p0) > 10
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    init = torch.load(tmp_path / "ddp" / "params-init.pt", weights_only=True)
    assert any(not torch.equal(init[k], p0[k]) for k in p0)  # and they did train


def test_keep_steps_checkpoints_survive_the_rotation(tmp_path):
    """train.keep_steps: checkpoints at those steps are never deleted by keep_last (Table II's curve)."""
    from csvr.engine.checkpoint import save_checkpoint

    for step in range(1, 11):
        save_checkpoint({"step": step}, tmp_path, step, keep_last=2, keep_steps=(2, 5))
    assert [int(p.stem.split("-")[1]) for p in list_checkpoints(tmp_path)] == [2, 5, 9, 10]
    with pytest.raises(ValueError, match="keep_steps"):
        from csvr.engine.config import TrainConfig
        TrainConfig(keep_steps=[0])
