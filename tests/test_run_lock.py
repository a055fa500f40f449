"""Issue 24: one job per run folder (``RUN/csvr.lock``) and Ctrl-C during training.

The holders are real processes: a child that takes the lock and sleeps (live), the same child
killed with SIGKILL (stale: its pid has exited); the signals are real signals."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from csvr.cli import main
from csvr.engine.checkpoint import latest_checkpoint, list_checkpoints
from csvr.engine.lock import LOCK_NAME, RunInUse, RunLock, launch_rank
from csvr.engine.trainer import StopFlag

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "CSVR_PROGRESS": "0", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
HOST = socket.gethostname()
HOLDER = ("import sys, time\nfrom csvr.engine.lock import RunLock\nRunLock(sys.argv[1]).acquire()\n"
          "print('held', flush=True)\ntime.sleep(120)\n")


def _holder(run: Path) -> subprocess.Popen:
    """A real process that takes ``run``'s lock and sleeps."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_records_its_holder_and_goes_on_release(tmp_path):
    run = tmp_path / "new" / "run"
    with RunLock(run) as lock:
        info = json.loads((run / LOCK_NAME).read_text())
        assert (info["pid"], info["host"]) == (os.getpid(), HOST) and lock.held
        assert abs(time.mktime(time.strptime(info["started"], "%Y-%m-%d %H:%M:%S")) - time.time()) < 5
        again = RunLock(run).acquire()  # this process holds it already: shared, not released
        again.release()
        assert (run / LOCK_NAME).exists()
    assert not (tmp_path / "new").exists()  # the folders it created for nothing go with it
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("x")
    RunLock(run).acquire().release()
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


def test_a_live_holder_refuses_and_a_dead_one_is_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    proc = _holder(run)
    try:
        with pytest.raises(RunInUse) as e:
            RunLock(run).acquire()
        msg = str(e.value)
        assert msg.startswith(f"{run} is in use by pid {proc.pid} on {HOST} since ")
        assert msg.endswith("; wait for it or choose another --out") and "\n" not in msg
    finally:
        proc.kill()
        proc.wait()
    held = json.loads((run / LOCK_NAME).read_text())
    assert held["pid"] == proc.pid  # SIGKILL left it behind
    lock = RunLock(run).acquire()
    err = capsys.readouterr().err
    assert f"taking over the lock of {run}: pid {proc.pid} on {HOST}" in err and "no longer running" in err
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (run / LOCK_NAME).exists() and not list(run.iterdir())


def test_a_reused_pid_is_not_the_holder(tmp_path, capsys):
    """A live pid whose kernel start time differs from the lock's is another program."""
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen(["sleep", "60"])
    try:
        (run / LOCK_NAME).write_text(json.dumps({"pid": proc.pid, "host": HOST, "started": "then",
                                                 "proc_start": "1", "token": "old"}))
        RunLock(run).acquire().release()
        assert "no longer running" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()


def test_another_hosts_lock_is_refused_with_the_file_to_delete_unless_slurm_requeued_it(tmp_path, monkeypatch,
                                                                                        capsys):
    run = tmp_path / "run"
    run.mkdir()
    record = {"pid": 4242, "host": "gpu-node-7", "started": "2024-05-01 10:00:00", "token": "t",
              "slurm_job": "991", "slurm_restart": 0}
    (run / LOCK_NAME).write_text(json.dumps(record))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(RunInUse) as e:
        RunLock(run).acquire()
    assert str(e.value).startswith(f"{run} is in use by pid 4242 on gpu-node-7 since 2024-05-01 10:00:00; wait")
    assert f"if you are sure it has ended, delete {run / LOCK_NAME}" in str(e.value)
    monkeypatch.setenv("SLURM_JOB_ID", "991")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the same job, requeued onto this node
    RunLock(run).acquire().release()
    assert "was this SLURM job's run before its requeue" in capsys.readouterr().err
    (run / LOCK_NAME).write_text("")
    with pytest.raises(RunInUse, match="cannot be read"):
        RunLock(run).acquire()


def test_launch_rank_names_rank_zero_before_the_processes_are_launched(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK",
                 "PMI_RANK", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launch_rank() == 0
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert launch_rank() == 0
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process started by Fabric's own launcher
    assert launch_rank() == 1
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "2")  # local rank 0 of another node
    assert launch_rank() == 2


def test_first_ctrl_c_sets_the_stop_flag_and_a_second_quits_at_once(capfd):
    before = signal.getsignal(signal.SIGINT)
    flag = StopFlag(announce=True)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert flag.set and flag.what == "Ctrl-C"
        assert "csvr: Ctrl-C: finishing the step, then saving a checkpoint" in capfd.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    finally:
        flag.restore()
    setup = StopFlag(announce=False, running=False)  # during set-up there is nothing to save
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert setup.set and setup.what == "a signal"
    finally:
        setup.restore()
    assert signal.getsignal(signal.SIGINT) is before


# ----------------------------------------------------------------------------- real training jobs
def _args(tiny_synth, run: Path) -> list[str]:
    return ["pretrain", "--config", "tiny-test", f"data.manifest={tiny_synth['manifest']}",
            f"data.pose_cache={tiny_synth['poses']}", "train.threads=1", "train.batch_size=2",
            "train.stages=[{name: joint, epochs: 100, max_steps: null}]", "train.ckpt_every_steps=2", "--out", str(run)]


def _start(tiny_synth, run: Path, until) -> subprocess.Popen:
    """`csvr pretrain` (long enough to be still running) in a session of its own, once ``until()``."""
    proc = subprocess.Popen([sys.executable, "-m", "csvr", *_args(tiny_synth, run)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not until() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    return proc


def test_a_running_job_refuses_a_second_one_stops_on_ctrl_c_with_a_checkpoint_and_resumes(tiny_synth, tmp_path,
                                                                                         capsys):
    """One real `csvr pretrain` (a subprocess) into RUN: a second one into the same --out (with or
    without --resume) stops with one line and touches nothing; a Ctrl-C to the first one's
    process group finishes its step, checkpoints and says how to resume; --resume continues."""
    run = tmp_path / "run"
    first = _start(tiny_synth, run, lambda: (run / LOCK_NAME).exists() and (run / "config.yaml").exists())
    try:
        lock = (run / LOCK_NAME).read_text()
        config = (run / "config.yaml").stat()
        second = subprocess.run([sys.executable, "-m", "csvr", *_args(tiny_synth, run)], env=ENV,
                                capture_output=True, text=True, timeout=120)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr[-2000:]
        assert lines[0].startswith(f"csvr: error: {run} is in use by pid {first.pid} on {HOST} since ")
        assert lines[0].endswith("; wait for it or choose another --out")
        assert main(["pretrain", "--out", str(run), "--resume"]) == 2  # --resume respects the lock the same way
        assert f"{run} is in use by pid {first.pid}" in capsys.readouterr().err
        assert (run / LOCK_NAME).read_text() == lock
        now = (run / "config.yaml").stat()
        assert (now.st_ino, now.st_mtime_ns) == (config.st_ino, config.st_mtime_ns)
        deadline = time.time() + 120
        while not list_checkpoints(run) and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None  # the first job trained on
    finally:
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it: to the whole process group
        err = first.communicate(timeout=120)[1]
    assert first.returncode == 2 and "Traceback" not in err, err[-2000:]
    lines = err.strip().splitlines()
    assert "csvr: Ctrl-C: finishing the step, then saving a checkpoint" in err
    assert lines[-1].startswith("csvr: error: stopped by Ctrl-C at step ")
    step = int(lines[-1].split("at step ")[1].split(";")[0])
    assert lines[-1].endswith(f"; the checkpoint is saved, continue with --resume --out {run}")
    assert latest_checkpoint(run)[1]["global_step"] == step
    assert not (run / LOCK_NAME).exists()
    # --resume continues from that step (two more: the stage's length is an override)
    rc = main(["pretrain", "--out", str(run), "--resume", f"train.stages=[{{name: joint, epochs: 100, "
               f"max_steps: {step + 2}}}]"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    assert json.loads((run / "summary.json").read_text())["global_step"] == step + 2
    with open(run / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, step + 3))
    assert not (run / LOCK_NAME).exists()
