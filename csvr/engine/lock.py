"""One training job per run folder: the lock file ``RUN/csvr.lock``.

Two jobs writing into one folder would interleave their checkpoints, logs and ``config.yaml``
(and each would resume from the other's steps), so every training job holds the folder's lock
from before its first read to its end. The lock file holds the holder's pid, host, start time
(and the kernel's start time of that pid, so a pid reused by another program is not mistaken
for the holder). It is created atomically: written under a temporary name, then hard-linked to
``csvr.lock`` (a link fails when the name exists, and a reader never sees half a file).

A job that finds the lock:

* held by a live process on this host: refuses, before any work, with one line;
* left by a process that no longer runs on this host (killed with SIGKILL, a crashed machine
  that came back): takes it over and says so;
* held on another host: refuses (csvr cannot see that host's processes) and says which file to
  delete if the user is sure that job has ended; the one exception is a SLURM job requeued
  onto another node (same ``SLURM_JOB_ID``, a higher ``SLURM_RESTART_COUNT``), which takes over
  the lock of its own earlier run.

Under DDP only rank 0 holds the lock (:func:`launch_rank` tells rank 0 before the processes
are launched); the other ranks belong to the same job and never look at it. A process that
already holds a folder's lock may take it again (the second hold is shared, not released).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

from csvr.errors import CsvrError

LOCK_NAME = "csvr.lock"

# the variables launchers set to a process's rank: torchrun, SLURM, MPI, LSF; Fabric's own
# launcher sets LOCAL_RANK / NODE_RANK in the processes it starts. Rank 0 has them all 0.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK",
                  "PMI_RANK", "JSM_NAMESPACE_RANK")


class RunInUse(CsvrError):
    """Another job holds the run folder's lock."""


def launch_rank() -> int:
    """This process's rank as its launcher's environment says, before Fabric is launched:
    0 when every rank variable present is 0 (or none is: a single process)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) != 0:
            return int(value)
    return 0


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot, /proc/PID/stat field 22), or
    None where there is no /proc; "" when the process does not exist (or is a zombie)."""
    if not os.path.isdir("/proc/self"):
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] in ("Z", "X") else fields[19]


def _pid_alive(pid: int, proc_start: str | None) -> bool:
    """Whether ``pid`` runs on this host and is the process that wrote the lock."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = _proc_start(pid)
    if now is None:  # no /proc: the signal test is all there is
        return True
    return now != "" and (not proc_start or now == proc_start)


def _slurm() -> tuple[str, int]:
    return os.environ.get("SLURM_JOB_ID", ""), int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


class RunLock:
    """The lock of one run folder: ``RunLock(run).acquire()`` ... ``release()`` (or ``with``)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.token: str | None = None  # set while this object holds the lock
        self.shared = False  # this process held it already: release leaves it
        self._created: list[Path] = []  # the folders acquire() created, deepest first

    # ------------------------------------------------------------------ reading
    def read(self) -> dict | None:
        """The holder's record, None when there is no lock; a half-written file (only possible
        where hard links are not supported) is read again for up to half a second."""
        for _ in range(10):
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                return None
            try:
                info = json.loads(text)
                if isinstance(info, dict) and "pid" in info:
                    return info
            except ValueError:
                pass
            time.sleep(0.05)
        raise RunInUse(f"{self.run_dir} has a lock file that cannot be read ({self.path}); if no csvr job is writing "
                       f"into {self.run_dir}, delete {self.path}")

    def _holder(self, info: dict) -> str:
        return (f"{self.run_dir} is in use by pid {info.get('pid')} on {info.get('host')} since "
                f"{info.get('started', '?')}")

    # ------------------------------------------------------------------ taking and giving back
    def acquire(self) -> "RunLock":
        """Take the lock, or raise :class:`RunInUse` (see the module docstring)."""
        missing = [d for d in (self.run_dir, *self.run_dir.parents) if not os.path.lexists(d)]
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CsvrError(f"{self.run_dir}: cannot create the run folder ({e.strerror or e})") from None
        self._created = missing
        host, me = socket.gethostname(), os.getpid()
        job, restart = _slurm()
        token = secrets.token_hex(8)
        record = {"pid": me, "host": host, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "time": time.time(),
                  "proc_start": _proc_start(me), "token": token, "slurm_job": job, "slurm_restart": restart,
                  "command": " ".join(sys.argv)[:500]}
        for _ in range(10):  # a lost race with another job only sends us round again
            if self._create(record):
                self.token = token
                return self
            info = self.read()
            if info is None:
                continue  # released between our two looks
            if info.get("host") != host:
                if job and info.get("slurm_job") == job and int(info.get("slurm_restart") or 0) < restart:
                    self._take_over(info, f"was this SLURM job's run before its requeue (restart {restart})")
                    continue
                raise RunInUse(f"{self._holder(info)}; wait for it or choose another --out (csvr cannot tell from "
                               f"{host} whether that job still runs: if you are sure it has ended, delete {self.path})")
            if int(info.get("pid", 0)) == me and info.get("proc_start") == record["proc_start"]:
                self.token, self.shared = info.get("token"), True  # this process holds it already
                return self
            if _pid_alive(int(info.get("pid", 0)), info.get("proc_start")):
                raise RunInUse(f"{self._holder(info)}; wait for it or choose another --out")
            self._take_over(info, "is no longer running")
        raise RunInUse(f"{self.run_dir}: could not take its lock {self.path} (other jobs keep taking it); wait for "
                       "them or choose another --out")

    def _create(self, record: dict) -> bool:
        """Create the lock file holding ``record``; False when it exists already."""
        fd, tmp = tempfile.mkstemp(prefix=f".{LOCK_NAME}.", suffix=".tmp", dir=self.run_dir)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record) + "\n")
            try:
                os.link(tmp, self.path)
                return True
            except FileExistsError:
                return False
            except OSError as e:  # a file system without hard links: exclusive create instead
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
                    raise
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(record) + "\n")
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _take_over(self, info: dict, why: str) -> None:
        """Remove the stale lock ``info``, unless another job replaced it meanwhile: it is moved
        aside first and put back when it turns out to be someone else's."""
        aside = self.path.with_name(f".{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return  # another job took it over first: the next round sees its lock
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = None
        if not isinstance(moved, dict) or moved.get("token") != info.get("token"):
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)  # not the stale one: give it back
        else:
            print(f"csvr: taking over the lock of {self.run_dir}: pid {info.get('pid')} on {info.get('host')} "
                  f"(since {info.get('started', '?')}) {why}", file=sys.stderr)
        aside.unlink()

    def release(self) -> None:
        """Give the lock back (if this object took it and it is still ours); the folders that
        :meth:`acquire` created and nothing else wrote to go too."""
        token, self.token = self.token, None
        if token is None or self.shared:
            return
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for folder in self._created:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break

    @property
    def held(self) -> bool:
        return self.token is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["LOCK_NAME", "RANK_VARIABLES", "RunInUse", "RunLock", "launch_rank"]
