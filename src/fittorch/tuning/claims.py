"""Who runs which trial: kernel locks on trial files, so a dead worker's trial is found and resumed.

A worker that starts a trial holds an exclusive ``flock`` on ``STUDY/locks/trial-NNNN.lock`` for
as long as it trains it, and records ``{"host", "pid", "run_dir"}`` in the trial's user attribute
``fittorch_owner``. The kernel drops the lock the instant that process dies (even by SIGKILL), so
another ``fittorch tune`` on the same machine that can take the lock of a trial still marked
RUNNING knows its owner is gone, and resumes that trial's run directory from its last checkpoint
under the same trial number. Two workers racing for one orphan: only one gets the lock.

New trials are asked under ``STUDY/locks/ask.lock``, so that counting the trials and asking for one
more is one step: workers on one machine never start more trials than asked for. A worker that
dies inside that step (after the ask, before recording itself) leaves the ``asking`` marker
behind; the next asker sees it and marks that owner-less trial FAIL, so it does not count.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

OWNER = "fittorch_owner"
SETUP_GRACE_S = 10.0  # a RUNNING trial with no owner this old: its worker died between ask and setup


@dataclass
class Claim:
    trial: object  # optuna.trial.Trial, owned by this process
    number: int
    run_dir: Path
    lock_fd: int
    resumed: bool

    def release(self) -> None:
        if self.lock_fd >= 0:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
            os.close(self.lock_fd)
            self.lock_fd = -1


def trial_dir(study_dir: Path, number: int) -> Path:
    return study_dir / "trials" / f"trial-{number:04d}"


def _lock_path(study_dir: Path, name: str) -> Path:
    folder = study_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def ask_lock(study_dir: Path):
    fd = os.open(_lock_path(study_dir, "ask.lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def owner_record(study_dir: Path, number: int) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "run_dir": str(trial_dir(study_dir, number).relative_to(study_dir))}


def claim_orphan(study, study_dir: Path) -> Claim | None:
    """Take over a RUNNING trial of this machine whose owner process is gone; None if there is none."""
    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = frozen.user_attrs.get(OWNER)
        if owner is None:
            continue  # being set up, or abandoned: claim_new settles it under the ask lock
        if owner.get("host") != host:
            continue  # another machine's worker: only a worker there can tell whether it lives
        fd = try_lock(_lock_path(study_dir, f"trial-{frozen.number:04d}.lock"))
        if fd is None:
            continue  # its owner is alive
        fresh = study.get_trials(deepcopy=False)[frozen.number]  # re-read under the lock
        if fresh.state != TrialState.RUNNING:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            continue
        trial = optuna.trial.Trial(study, fresh._trial_id)
        trial.set_user_attr(OWNER, {**owner_record(study_dir, fresh.number), "previous_pid": owner.get("pid")})
        return Claim(trial, fresh.number, trial_dir(study_dir, fresh.number), fd, resumed=True)
    return None


def fail_abandoned(study, died_mid_ask: bool) -> None:
    """Mark FAIL the RUNNING trials that never got an owner: their worker died between asking for
    them and recording itself. Called under the ask lock. ``died_mid_ask``: the ``asking`` marker
    of the last asker on this machine is still there, so it died inside that step, and its trial
    goes at once; otherwise only trials older than a grace period go (a worker on another machine,
    with a database storage, may be inside that step right now)."""
    from optuna.trial import TrialState

    grace = 0.0 if died_mid_ask else SETUP_GRACE_S
    now = datetime.now(timezone.utc)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = frozen.datetime_start
        if OWNER in frozen.user_attrs or started is None:
            continue
        if (now - started.astimezone(timezone.utc)).total_seconds() >= grace:
            study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)


def counts(study) -> dict[str, int]:
    from optuna.trial import TrialState

    out = {"complete": 0, "pruned": 0, "running": 0, "failed": 0}
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.RUNNING: "running",
             TrialState.WAITING: "running", TrialState.FAIL: "failed"}
    for t in study.get_trials(deepcopy=False):
        out[names[t.state]] += 1
    return out


def claim_new(study, study_dir: Path, target: int | None, suggest, before_ask) -> Claim | None:
    """Ask for one more trial, unless finished + running trials already reach ``target``.

    ``before_ask(study)`` runs under the lock, right before the ask (it seeds the sampler or queues
    the next grid point); ``suggest(trial)`` samples the trial's parameters right away, so the
    trial is complete in the storage before its owner is recorded.
    """
    marker = _lock_path(study_dir, "asking")
    with ask_lock(study_dir):
        fail_abandoned(study, died_mid_ask=marker.exists())
        c = counts(study)
        if target is not None and c["complete"] + c["pruned"] + c["running"] >= target:
            return None
        before_ask(study)
        marker.write_text(str(os.getpid()))
        trial = study.ask()
        suggest(trial)
        fd = try_lock(_lock_path(study_dir, f"trial-{trial.number:04d}.lock"))
        trial.set_user_attr(OWNER, owner_record(study_dir, trial.number))
        marker.unlink()
    return Claim(trial, trial.number, trial_dir(study_dir, trial.number), fd if fd is not None else -1,
                 resumed=False)
