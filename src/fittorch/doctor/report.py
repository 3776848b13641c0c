"""The doctor's result: one :class:`CheckResult` per check, gathered in a :class:`DoctorReport`.

A check ends as ``pass``, ``warn``, ``fail`` or ``skip``. Every result carries a one-line
summary, the evidence behind it (plain JSON-able values) and, unless it passed, a fix.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STATUSES = (PASS, WARN, FAIL, SKIP)


@dataclass
class CheckResult:
    """The outcome of one check."""

    id: str  # e.g. "data.leakage", "overfit_batch"
    title: str  # e.g. "train/val leakage"
    status: str  # pass | warn | fail | skip
    summary: str  # one line, with the numbers that matter
    evidence: dict = field(default_factory=dict)
    fix: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["evidence"] = _jsonable(self.evidence)
        d["seconds"] = round(self.seconds, 4)
        return d


@dataclass
class DoctorReport:
    """All check results, plus a description of the setup that was examined."""

    checks: list[CheckResult]
    setup: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, check_id: str) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(f"No check '{check_id}' in this report. Checks: {', '.join(c.id for c in self.checks)}.")

    def __contains__(self, check_id: str) -> bool:
        return any(c.id == check_id for c in self.checks)

    def __iter__(self):
        return iter(self.checks)

    def with_status(self, status: str) -> list[CheckResult]:
        return [c for c in self.checks if c.status == status]

    @property
    def failed(self) -> list[CheckResult]:
        return self.with_status(FAIL)

    @property
    def warnings(self) -> list[CheckResult]:
        return self.with_status(WARN)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {s: len(self.with_status(s)) for s in STATUSES}

    def exit_code(self, strict: bool = False) -> int:
        """1 when a check failed (or, with ``strict``, warned), else 0: for CI gates."""
        return 1 if self.failed or (strict and self.warnings) else 0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "counts": self.counts(), "seconds": round(self.seconds, 3),
                "setup": _jsonable(self.setup), "checks": [c.to_dict() for c in self.checks]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def render(self, *, color: bool | None = None, verbose: bool = False) -> str:
        from .render import render_text

        return render_text(self, color=_use_color(sys.stdout) if color is None else color, verbose=verbose)

    def __str__(self) -> str:
        return self.render(color=False)

    def __repr__(self) -> str:
        c = self.counts()
        return f"DoctorReport({c[PASS]} pass, {c[WARN]} warn, {c[FAIL]} fail, {c[SKIP]} skip)"

    def _repr_pretty_(self, p, cycle) -> None:  # IPython shows the checklist
        p.text(self.render(color=False))

    def _repr_html_(self) -> str:  # Jupyter: the checklist as a table, fixes under warnings/failures
        from ..display import doctor_html

        return doctor_html(self)


def _use_color(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _jsonable(value):
    """Numbers, strings, lists and dicts only; non-finite floats become strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return _jsonable(value.item())
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)
