"""``TrainState``: the loop's progress, as plain data.

Together with each component's ``state_dict()`` (model, optimizer, scheduler, scaler,
callbacks) it is the whole of a run: saved and restored whole, a run resumes exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .history import History


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken since the run began
    batch_in_epoch: int = 0  # batches done in the current epoch (> 0 only mid-epoch)
    max_epochs: int = 0
    should_stop: bool = False  # set by a callback or a signal; the loop stops at the next check
    stop_reason: str = ""
    status: str = "created"  # created | running | finished | stopped | interrupted | failed
    best_value: float | None = None
    best_epoch: int | None = None
    history: History = field(default_factory=History)
    step_validations: list = field(default_factory=list)  # fit(val_every_steps=N): one dict per validation

    def state_dict(self) -> dict:
        d = asdict(self)
        d["history"] = self.history.state_dict()
        return d

    def load_state_dict(self, d: dict) -> None:
        for key, value in d.items():
            if key == "history":
                self.history.load_state_dict(value)
            elif hasattr(self, key):
                setattr(self, key, value)
