"""Who runs which trial: kernel locks find dead owners; a worker that died mid-ask is cleaned up."""

from __future__ import annotations

import pytest

from fittorch.tuning.claims import OWNER, claim_new, claim_orphan, counts
from fittorch.tuning.storage import open_storage

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402


@pytest.fixture
def study(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="s", storage=open_storage(None, tmp_path))


def suggest(trial):
    trial.suggest_float("x", 0.0, 1.0)


def nothing(study):
    pass


def test_a_live_owner_keeps_its_trial_and_a_dead_one_loses_it(study, tmp_path):
    first = claim_new(study, tmp_path, 2, suggest, nothing)
    assert first.number == 0 and not first.resumed
    assert first.trial.user_attrs[OWNER]["run_dir"] == "trials/trial-0000"
    assert claim_orphan(study, tmp_path) is None  # its lock is held: the owner is alive
    first.release()  # what the kernel does when the owner dies
    taken = claim_orphan(study, tmp_path)
    assert taken is not None and taken.number == 0 and taken.resumed
    assert taken.trial.params == first.trial.params  # the same trial, the same values
    assert claim_orphan(study, tmp_path) is None  # now this process holds it
    study.tell(0, 0.5)
    taken.release()
    assert claim_orphan(study, tmp_path) is None  # finished trials are never taken over


def test_the_target_counts_running_trials(study, tmp_path):
    a = claim_new(study, tmp_path, 2, suggest, nothing)
    b = claim_new(study, tmp_path, 2, suggest, nothing)
    assert claim_new(study, tmp_path, 2, suggest, nothing) is None
    study.tell(a.number, state=TrialState.FAIL)  # a failed trial does not count: one more is asked
    c = claim_new(study, tmp_path, 2, suggest, nothing)
    assert c is not None and c.number == 2
    for claim in (a, b, c):
        claim.release()


def test_a_worker_that_died_inside_the_ask_leaves_a_trial_that_is_failed(study, tmp_path):
    orphan = study.ask()  # asked, never owned: the worker died right here...
    (tmp_path / "locks").mkdir(exist_ok=True)
    (tmp_path / "locks" / "asking").write_text("12345")  # ...with its marker still there
    claim = claim_new(study, tmp_path, 1, suggest, nothing)
    assert claim is not None and claim.number == orphan.number + 1
    assert study.trials[orphan.number].state == TrialState.FAIL
    assert counts(study) == {"complete": 0, "pruned": 0, "running": 1, "failed": 1}
    assert not (tmp_path / "locks" / "asking").exists()
    claim.release()


def test_an_unowned_trial_without_the_marker_is_left_alone_for_a_while(study, tmp_path):
    study.ask()  # another machine's worker may be inside its ask right now
    assert claim_new(study, tmp_path, 1, suggest, nothing) is None
    assert study.trials[0].state == TrialState.RUNNING
