"""Whole-process measurements: ``fittorch demo`` against the plain script doing the same job,
the cost of ``import fittorch`` beyond ``import torch``, and peak RSS.

Each command runs as a fresh process; the two are alternated. Wall time and CPU time
(user + system, from ``wait4``) come from the kernel; peak RSS is the process's own VmHWM.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

IMPORT_SNIPPET = (
    "import time; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); import fittorch; "
    "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def _env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = str(threads)
    env["MPLBACKEND"] = "Agg"
    return env


# Peak RSS is read inside the measured process (VmHWM of its own address space): a forked
# child's ru_maxrss would start from the parent's RSS at fork, i.e. this harness's.
_PEAK = ("import atexit, runpy, sys\n"
         "def _peak():\n"
         "    for line in open('/proc/self/status'):\n"
         "        if line.startswith('VmHWM:'):\n"
         "            print('\\nPEAK_RSS_KB', line.split()[1], flush=True)\n"
         "atexit.register(_peak)\n")


def wrap(kind: str, target: str, args: list[str]) -> list[str]:
    """A command that runs a module (``-m``) or a script in this process and reports its peak RSS."""
    run = f"runpy.run_module({target!r}, run_name='__main__', alter_sys=True)" if kind == "module" else \
        f"runpy.run_path({target!r}, run_name='__main__')"
    return [sys.executable, "-c", _PEAK + f"sys.argv = [{target!r}] + {args!r}\n" + run]


def run_measured(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; return wall seconds, CPU seconds and peak RSS (MiB) of that process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.decode()[-2000:]}")
    text = out.decode()
    peak = [line.split()[1] for line in text.splitlines() if line.startswith("PEAK_RSS_KB")]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": int(peak[-1]) / 1024 if peak else float("nan"), "output": text}


def measure(repeats: int = 5, log=print) -> dict:
    env = _env()
    # import fittorch beyond import torch, in fresh processes
    extra, base = [], []
    for _ in range(repeats * 2):
        out = subprocess.run([sys.executable, "-c", IMPORT_SNIPPET], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        base.append(float(out[0]))
        extra.append(float(out[1]))
    imports = {"import_torch_s": statistics.median(base), "import_fittorch_extra_s": statistics.median(extra)}
    log(f"\nimport torch: {imports['import_torch_s']:.3f} s; import fittorch after it: "
        f"{imports['import_fittorch_extra_s']:.3f} s (median of {len(extra)} fresh processes)")

    results: dict[str, list[dict]] = {"fittorch demo": [], "plain script": []}
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "fittorch demo": wrap("module", "fittorch", ["demo", "--quiet", "--out", f"{tmp}/demo"]),
            "plain script": wrap("script", str(HERE / "plain_script.py"), ["--out", f"{tmp}/plain"]),
        }
        for r in range(repeats):
            names = list(commands) if r % 2 == 0 else list(reversed(commands))
            for name in names:
                results[name].append(run_measured(commands[name], env))
            log("  process round %d: %s" % (r + 1, "  ".join(
                f"{n} {results[n][-1]['wall_s']:.2f}s" for n in commands)))
    summary = {}
    lines = ["| process | wall s (median) | CPU s (median) | peak RSS MiB (median) |", "|---|---:|---:|---:|"]
    for name, runs in results.items():
        summary[name] = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_rss_mib")}
        s = summary[name]
        lines.append(f"| {name} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {s['peak_rss_mib']:.0f} |")
    log("\n### Whole process: `fittorch demo` vs the plain script (1 thread)\n\n" + "\n".join(lines))
    return {"imports": imports, "processes": summary}
