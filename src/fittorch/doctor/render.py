"""The terminal checklist."""

from __future__ import annotations

import textwrap

from .report import FAIL, PASS, SKIP, WARN

_LABEL = {PASS: "PASS", WARN: "WARN", FAIL: "FAIL", SKIP: "SKIP"}
_COLOR = {PASS: "32", WARN: "33", FAIL: "31;1", SKIP: "2"}
_WIDTH = 100


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def render_text(report, *, color: bool = False, verbose: bool = False) -> str:
    """One line per check; a fix line under every warn/fail; a summary line at the end."""
    lines = []
    setup = report.setup
    if setup:
        head = ", ".join(f"{k} {v}" for k, v in setup.items() if k in ("model", "loss", "optimizer", "lr",
                                                                        "batch_size", "device", "train", "val"))
        lines.append(f"fittorch doctor: {head}")
        lines.append("")
    title_width = max((len(c.title) for c in report.checks), default=10)
    for c in report.checks:
        tag = _paint(f"{_LABEL[c.status]:4}", _COLOR[c.status], color)
        lines.append(f"  {tag}  {c.title:<{title_width}}  {c.summary}")
        pad = " " * (10 + title_width)
        if c.status in (WARN, FAIL) and c.fix:
            for i, part in enumerate(textwrap.wrap(c.fix, _WIDTH - len(pad) - 5)):
                lines.append(f"{pad}{'fix: ' if i == 0 else '     '}{part}")
        if verbose and c.evidence:
            for k, v in c.evidence.items():
                lines.append(f"{pad}{k}: {_short(v)}")
    n = report.counts()
    verdict = _paint("FAILED", _COLOR[FAIL], color) if n[FAIL] else _paint("OK", _COLOR[PASS], color)
    lines.append("")
    lines.append(f"{verdict}: {n[PASS]} passed, {n[WARN]} warned, {n[FAIL]} failed, {n[SKIP]} skipped "
                 f"in {report.seconds:.1f} s")
    return "\n".join(lines)


def _short(value, limit: int = 90) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
