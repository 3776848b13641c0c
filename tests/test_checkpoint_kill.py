"""Kill -9 at random moments, resume, and get the bits of a run that was never interrupted.

Each training segment is a real process killed with SIGKILL (see ``ckpt_helpers``): shuffling,
dropout, an LR scheduler and a DataLoader with 2 workers are all on. The reference run has no
checkpointing at all, so checkpointing itself is shown not to perturb it. Segments are forked
from a warm parent to save imports; one resume runs in a fresh interpreter, with the same bits.
"""

from __future__ import annotations

import os
import random
import signal
import time


import ckpt_helpers as h
from fittorch.checkpoint import latest, list_checkpoints, load_checkpoint, position, verify

TOTAL = h.EPOCHS * h.STEPS_PER_EPOCH  # 150 optimizer steps


def test_sigkill_at_ten_seeded_random_steps_resumes_bit_exact(tmp_path, tmp_path_factory, cli_env):
    ref = h.reference(tmp_path_factory, cli_env)
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    kill_points = sorted(random.Random(2024).sample(range(2, TOTAL - 1), 10))
    resumed_from = []
    for step in kill_points:
        expected_start = h.resumes_from(ckdir)
        code, log = z.run(script, ckdir, out, extra_env={"KILL_AT_STEP": str(step)})
        assert code == -signal.SIGKILL, f"expected a SIGKILL at step {step}, got {code}:\n{log}"
        assert h.started_at(out) == expected_start  # it really resumed (a fresh start would also match the bits)
        newest = latest(ckdir)
        assert newest is not None
        done = position(newest)[0] * h.STEPS_PER_EPOCH + position(newest)[1]
        assert step - 7 <= done <= step  # saved every 7 steps and at epoch ends; never past the kill
        verify(newest)
        resumed_from.append(newest.name)
    expected_start = h.resumes_from(ckdir)
    code, log = z.run(script, ckdir, out)
    assert code == 0, log
    assert h.started_at(out) == expected_start != (0, 0)
    h.assert_same_run(out, ref)
    assert any(not name.endswith("b0000000") for name in resumed_from), "no mid-epoch resume was exercised"
    assert len(list_checkpoints(ckdir)) <= 3  # keep_last=2, plus the best by val_loss


def test_external_sigkill_at_random_moments_resumes_bit_exact(tmp_path, tmp_path_factory, cli_env):
    """kill -9 from outside after seeded random delays: inside a step, a validation or a save."""
    ref = h.reference(tmp_path_factory, cli_env)
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    rng = random.Random(99)
    kills = 0
    for attempt in range(4):
        marker = out / "marker"
        marker.unlink(missing_ok=True)
        expected_start = h.resumes_from(ckdir)
        first_step = expected_start[0] * h.STEPS_PER_EPOCH + expected_start[1] + 1
        z.submit(script, ckdir, out, extra_env={"SLOW": "0.004", "MARK_AT_STEP": str(first_step)})
        deadline = time.monotonic() + 120
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline, "the training process never started training"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.5))
        try:
            os.kill(int(marker.read_text()), signal.SIGKILL)
        except ProcessLookupError:  # it finished first: nothing left to kill
            pass
        code, log = z.result()
        assert h.started_at(out) == expected_start
        if code == 0:
            break
        assert code == -signal.SIGKILL, log
        kills += 1
    if code != 0:
        code, log = z.run(script, ckdir, out)
        assert code == 0, log
    assert kills >= 2
    h.assert_same_run(out, ref)


def test_sigkill_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, tmp_path_factory, cli_env):
    ref = h.reference(tmp_path_factory, cli_env)
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out, marker = tmp_path / "checkpoints", tmp_path / "out", tmp_path / "paused"
    # The 5th save of the process pauses after writing its files, before the manifest and the rename.
    z.submit(script, ckdir, out, extra_env={"FITTORCH_TEST_PAUSE_IN_SAVE": f"5:{marker}"})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline, "the save never reached its pause point"
        time.sleep(0.05)
    time.sleep(0.05)
    tmp = type(ckdir)(marker.read_text())
    assert tmp.is_dir() and tmp.name.startswith(".tmp-ckpt-")
    assert (tmp / "model.safetensors").exists() and not (tmp / "manifest.json").exists()
    writer_pid = int(tmp.name.split("-")[-2])
    os.kill(writer_pid, signal.SIGKILL)
    code, _ = z.result()
    assert code == -signal.SIGKILL

    complete = list_checkpoints(ckdir)
    assert complete and tmp not in complete  # the half-written one is not listed...
    verify(complete[-1])  # ...and the newest complete one is intact
    load_checkpoint(complete[-1])
    assert tmp.exists()

    # This resume runs in a fresh interpreter, not a forked child: same bits either way.
    proc = h.run(script, ckdir, out, cli_env)
    assert "STATUS finished" in proc.stdout
    assert h.started_at(out) == position(complete[-1])
    assert not tmp.exists(), "the leftover temporary directory was not cleaned up on the next start"
    h.assert_same_run(out, ref)


def test_accumulation_resume_mid_window_with_in_memory_data(tmp_path, tmp_path_factory, cli_env):
    """Gradient accumulation (3 micro-batches per step): stops inside a window keep its gradients."""
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    env = {"DATA": "memory", "ACCUMULATE": "3", "EVERY": "2"}
    code, log = z.run(script, "none", tmp_path / "ref", extra_env=env)
    assert code == 0, log
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    # Batches 23 and 74 are inside a window (23 % 3 == 2, 74 % 3 == 2): SIGTERM saves there.
    for extra in ({"SIGNAL_AT_STEP": "TERM:23"}, {"KILL_AT_STEP": "52"}, {"SIGNAL_AT_STEP": "TERM:74"},
                  {"KILL_AT_STEP": "119"}):
        expected_start = h.resumes_from(ckdir)
        code, log = z.run(script, ckdir, out, extra_env={**env, **extra})
        assert h.started_at(out) == expected_start
        expected = 75 if "SIGNAL_AT_STEP" in extra else -signal.SIGKILL
        assert code == expected, log
        if "SIGNAL_AT_STEP" in extra:
            at = int(extra["SIGNAL_AT_STEP"].split(":")[1])
            newest = latest(ckdir)
            assert position(newest) == divmod(at, h.STEPS_PER_EPOCH)
            assert load_checkpoint(newest).state["grads"] is not None  # a window was open
    expected_start = h.resumes_from(ckdir)
    code, log = z.run(script, ckdir, out, extra_env=env)
    assert code == 0, log
    assert h.started_at(out) == expected_start != (0, 0)
    h.assert_same_run(out, tmp_path / "ref")



import pytest  # noqa: E402


@pytest.mark.parametrize("step", ["loss", "gan"])
def test_custom_steps_resume_bit_exact_after_sigkill(tmp_path, tmp_path_factory, cli_env, step):
    """A custom compute_loss step, and a two-optimizer GAN train_step (per-optimizer schedule and
    clipping): kill -9 at seeded random steps, resume, and get the uninterrupted run's bits."""
    ref = h.reference(tmp_path_factory, cli_env, step=step)
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    for at in sorted(random.Random({"loss": 7, "gan": 11}[step]).sample(range(2, TOTAL - 1), 3)):
        expected_start = h.resumes_from(ckdir)
        code, log = z.run(script, ckdir, out, extra_env={"KILL_AT_STEP": str(at), "STEP": step})
        assert code == -signal.SIGKILL, f"expected a SIGKILL at step {at}, got {code}:\n{log}"
        assert h.started_at(out) == expected_start
    code, log = z.run(script, ckdir, out, extra_env={"STEP": step})
    assert code == 0, log
    assert h.started_at(out) != (0, 0)
    h.assert_same_run(out, ref)
    if step == "gan":
        final = __import__("json").loads((out / "final.json").read_text())
        assert {"lr_generator", "lr_discriminator", "grad_norm"} <= set(final["history"][-1])
