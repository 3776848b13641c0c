"""The worker loop of ``fittorch tune``: resume orphaned trials, ask new ones, tell their outcome.

Every worker (one ``fittorch tune`` process) runs the same loop against the shared storage:

1. claim a trial of this machine whose owner died (see :mod:`.claims`) and resume it;
2. otherwise ask a new trial, unless completed + pruned + running trials reach ``trials``
   (or ``timeout`` seconds have passed since this worker started);
3. train it in ``STUDY/trials/trial-NNNN/`` and tell the storage how it ended.

SIGTERM or Ctrl-C during a trial saves its checkpoint, leaves the trial RUNNING (so the next
``fittorch tune`` resumes it) and returns :data:`EXIT_INTERRUPTED`.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, FittorchError
from .claims import claim_new, claim_orphan
from .space import SearchConfig
from .trial import EXIT_INTERRUPTED, Outcome, failed, params_of, run_trial


@dataclass
class Plan:
    cfg: Config
    search: SearchConfig
    study_dir: Path
    metric: str
    direction: str
    trials: int | None
    timeout: float | None
    log: object = print
    history: list = field(default_factory=list)  # (number, Outcome, seconds) run by this worker


def make_sampler(search: SearchConfig, n_existing: int):
    """The sampler for the study's ``n_existing``-th trial (seeded by that position when search.seed is set)."""
    import optuna

    seed = None if search.seed is None else search.seed + 7919 * n_existing
    if search.sampler in ("random", "grid"):  # grid: the values are queued by next_grid_point
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def grid_points(search: SearchConfig) -> list[dict]:
    """Every combination of the grid, in a fixed order (shuffled by search.seed when given)."""
    import itertools
    import random

    keys = list(search.space)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(search.space[k].grid() for k in keys))]
    if search.seed is not None:
        random.Random(search.seed).shuffle(points)
    return points


def before_ask(search: SearchConfig):
    """What to do under the ask lock: queue the first grid point no live or finished trial has, or
    seed the sampler by the new trial's position (so a seeded search samples the same values
    however many workers share it, and no two workers sample alike)."""
    from optuna.trial import TrialState

    def prepare(study):
        trials = study.get_trials(deepcopy=False)
        if search.sampler == "grid":
            if any(t.state == TrialState.WAITING for t in trials):
                return  # a point queued by a worker that died before asking: the ask takes that one
            taken = [t.params for t in trials if t.state != TrialState.FAIL]
            point = next((p for p in grid_points(search) if p not in taken), None)
            if point is not None:
                study.enqueue_trial(point)
        elif search.seed is not None:
            study.sampler = make_sampler(search, len(trials))

    return prepare


def make_pruner(search: SearchConfig, epochs: int):
    import optuna

    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials,
                                           n_warmup_steps=search.warmup_epochs)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.NopPruner()


def open_study(storage, name: str, direction: str, search: SearchConfig, epochs: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True,
                                sampler=make_sampler(search, 0), pruner=make_pruner(search, epochs))
    have = study.direction.name.lower()
    if have != direction:
        raise ConfigError(f"The study {name!r} in this storage is to {have}, but the config asks to {direction}. "
                          "Tune under another name (--name) or set search.direction: " + have + ".")
    return study


class StopFlag:
    """SIGTERM / Ctrl-C between trials: finish nothing new, exit 75. (During a trial, fit's own
    handler saves a checkpoint first.) A second signal exits at once."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signum
        sys.stderr.write(f"\nfittorch tune: {signal.Signals(signum).name} received: stopping after this step.\n")

    def __call__(self) -> bool:
        return self.received is not None

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_worker(study, plan: Plan) -> int:
    """Run trials until the study has enough; 0, or 75 when interrupted, or 1 when every trial failed."""
    started = time.monotonic()
    fails_in_a_row = 0
    with StopFlag() as stop:
        while not stop():
            claim = claim_orphan(study, plan.study_dir)
            if claim is None:
                if plan.timeout is not None and time.monotonic() - started >= plan.timeout:
                    plan.log(f"timeout: {plan.timeout:g} s passed; starting no new trial.")
                    break
                claim = claim_new(study, plan.study_dir, plan.trials, lambda t: params_of(plan.search, t),
                                  before_ask(plan.search))
                if claim is None:
                    break
            outcome = _run_claimed(study, plan, claim, stop)
            if outcome.state == "interrupted":
                return EXIT_INTERRUPTED
            fails_in_a_row = fails_in_a_row + 1 if outcome.state == "failed" else 0
            if fails_in_a_row >= 3 and not any(o.state in ("complete", "pruned") for _, o, _ in plan.history):
                plan.log("3 trials in a row failed and none succeeded; stopping (see their run.json 'error').")
                return 1
        if stop():
            return EXIT_INTERRUPTED
    tried = [o.state for _, o, _ in plan.history]
    return 1 if tried and not any(s in ("complete", "pruned") for s in tried) else 0


def _run_claimed(study, plan: Plan, claim, stop) -> Outcome:
    from optuna.trial import TrialState

    t0 = time.monotonic()
    what = "resuming" if claim.resumed else "starting"
    try:
        try:
            plan.log(f"trial {claim.number}: {what} {_params_text(claim.trial.params)} in {claim.run_dir}")
            outcome = run_trial(plan.cfg, plan.search, claim, metric=plan.metric, direction=plan.direction,
                                pruning=plan.search.pruner != "none", stop_requested=stop)
        except FittorchError as exc:  # a diverged or refused trial: the study goes on
            outcome = failed(exc)
        except Exception:
            study.tell(claim.number, state=TrialState.FAIL, skip_if_finished=True)
            raise
        seconds = time.monotonic() - t0
        if outcome.state == "interrupted":
            plan.log(f"trial {claim.number}: interrupted; its checkpoint is kept. Run the same command "
                     "again to resume it.")
            return outcome
        claim.trial.set_user_attr("epochs", outcome.epochs)
        if outcome.error:
            claim.trial.set_user_attr("error", outcome.error)
        if outcome.state == "complete":
            study.tell(claim.number, outcome.value, skip_if_finished=True)
        elif outcome.state == "pruned":
            study.tell(claim.number, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            study.tell(claim.number, state=TrialState.FAIL, skip_if_finished=True)
        plan.history.append((claim.number, outcome, seconds))
        value = "" if outcome.value is None or not math.isfinite(outcome.value) else \
            f" {plan.metric} {outcome.value:.4f}"
        plan.log(f"trial {claim.number}: {outcome.state}{value} after {outcome.epochs} epochs "
                 f"({seconds:.1f} s){' - ' + outcome.error if outcome.error else ''}")
        return outcome
    finally:
        claim.release()


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
