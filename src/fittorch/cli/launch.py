"""``fittorch fit CONFIG --nproc N``: relaunch the command under torch's launcher (torchrun)."""

from __future__ import annotations

import os
import subprocess
import sys

from ..errors import ConfigError


def launch(argv: list[str], nproc: int, *, python: str | None = None) -> int:
    """Run ``fittorch <argv>`` in ``nproc`` processes through torch's launcher; return its exit code.

    This is what ``fittorch fit CONFIG --nproc N`` does: it re-executes itself as
    ``python -m torch.distributed.run --standalone --nproc_per_node N -m fittorch <argv>``
    (``--nproc`` removed from ``argv``). ``--standalone`` picks a free port on this node.
    For several nodes, call torchrun yourself (see docs/distributed.md).
    """
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise ConfigError(f"--nproc {nproc!r}: expected a positive number of processes, such as 2.")
    if os.environ.get("LOCAL_RANK") is not None:
        raise ConfigError("--nproc was given inside a process that torchrun already started; drop --nproc "
                          "when launching with torchrun yourself.")
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(nproc), "-m", "fittorch", *strip_nproc(argv)]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:  # torchrun got the same Ctrl-C and stops its workers
        return 130


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
