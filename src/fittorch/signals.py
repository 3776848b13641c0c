"""SIGTERM / SIGINT during ``fit``: finish the step, save, and return.

With a ``checkpoint_dir``, ``Trainer.fit`` runs the loop inside :class:`StopOnSignal`:

* the first SIGTERM or SIGINT (Ctrl-C) only sets ``trainer.state.should_stop``; the
  current step finishes, :class:`~fittorch.callbacks.ModelCheckpoint` writes a checkpoint
  at that exact position, ``fit`` prints how to resume and returns normally with
  ``trainer.state.status == "interrupted"``;
* a second signal exits the process at once (exit code 128 + the signal number); a
  checkpoint being written then is abandoned and the previous one stays intact;
* the previous handlers are restored when ``fit`` ends.

A command-line run that was interrupted exits with :data:`EXIT_INTERRUPTED`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL (sysexits.h): "try again later" -- the run can be resumed

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), signal.SIGINT) if s is not None)


class StopOnSignal:
    """Context manager: turns the first SIGTERM/SIGINT into a clean stop of ``trainer``.

    A no-op when ``enabled`` is False or when not called from the main thread (Python
    only lets the main thread install handlers).
    """

    def __init__(self, trainer, enabled: bool = True):
        self.trainer = trainer
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopOnSignal:
        self.trainer.stop_signal = None
        if self.enabled:
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            # Second signal: leave now. Whatever save is in flight stays a temporary directory.
            sys.stderr.write(f"\nfittorch: second {name}: exiting at once; the previous checkpoint is intact.\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.received = signum
        self.trainer.stop_signal = signum
        state = self.trainer.state
        state.should_stop = True
        state.stop_reason = f"{name} received"
        sys.stderr.write(f"\nfittorch: {name} received: finishing the current step and saving a checkpoint "
                         f"(send it again to exit at once).\n")
        sys.stderr.flush()

    def __exit__(self, exc_type, exc, tb) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        state = self.trainer.state
        if exc_type is None and self.received is not None and state.status == "stopped":
            state.status = "interrupted"
            print(resume_message(self.trainer), file=sys.stderr, flush=True)


def resume_message(trainer) -> str:
    state = trainer.state
    where = f"epoch {state.epoch + 1}, batch {state.batch_in_epoch}" if state.batch_in_epoch else \
        f"the end of epoch {state.epoch}"
    from .checkpoint.store import position

    path = getattr(trainer, "checkpoint_path", None)
    if path is not None and position(path) == (state.epoch, state.batch_in_epoch):
        saved = f"Saved the run at {where} (global step {state.global_step}) to {path}."
    elif path is not None:
        saved = f"No checkpoint could be written at {where} (see above); the newest one is {path}."
    else:
        saved = "No checkpoint could be written (see the warnings above)."
    return (f"fittorch: training interrupted ({state.stop_reason or 'a signal'}). {saved}\n"
            f"To continue exactly where it stopped: trainer.fit(..., resume='last') with the same arguments, "
            f"or `fittorch resume RUN_DIR` for a command-line run.")
