"""Fresh-process benchmarks: what a user feels running ``python train.py`` or ``fittorch ...``.

    python benchmarks/bench.py --fresh -w W1 -r 7      # each training call in its own new process
    python benchmarks/bench.py --cli -r 7              # CLI latency against `python -c "import torch"`

The warm benchmarks (``bench.py`` without these flags) run every implementation once to
warm up and then time it inside one long-lived process, so one-time costs (imports, lazy
initialisation) are paid once and hidden. Here every run is a new interpreter:

- **training call**: ``benchmarks/fresh_one.py IMPL W`` starts Python, imports torch, makes
  the workload's data, imports the implementation (fittorch: ``from fittorch import Trainer``)
  and times its training call from the numpy arrays to the last validation, cold;
- **whole process**: the same process timed from outside, start to exit (wall and CPU, from
  ``wait4``), which also counts interpreter start-up, imports and making the data;
- **CLI latency**: ``fittorch --help``, ``fittorch runs``, ``fittorch predict RUN new.csv`` on 20
  rows and ``fittorch evaluate RUN``, each a new process, against ``python -c "import torch"``.

Implementations and commands alternate: each round runs every one once, in a rotated order.
Child processes may write ``.pyc`` files (``PYTHONDONTWRITEBYTECODE`` is dropped), as on a
user's machine, and one untimed warm-up run of each fills that cache and the OS file cache.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
BASELINE, LESSON = "hand_optimized", "plain_loop"


def child_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = str(threads)
    env["MPLBACKEND"] = "Agg"
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users have cached bytecode
    return env


def run_process(cmd: list[str], env: dict, cwd=None) -> dict:
    """Wall seconds (start to exit), CPU seconds (user + system, from wait4) and stdout of ``cmd``."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read()  # until the child closes it; wait4 then reaps it with its rusage
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.stdout.close()
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {code}:\n{err.read().decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "stdout": out.decode()}


def _ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den))


def fresh_fits(wname: str, impls: list[str], repeats: int, threads: int, epochs: int | None, log) -> dict:
    """Every implementation's training call and whole process, each run in a new process."""
    env = child_env(threads)
    base = [sys.executable, str(HERE / "fresh_one.py")]
    extra = ["--threads", str(threads)] + (["--epochs", str(epochs)] if epochs else [])
    for name in impls:  # untimed: fills the .pyc cache and the OS file cache
        run_process(base + [name, wname, "--threads", str(threads), "--epochs", "1"], env)
    runs: dict[str, list[dict]] = {name: [] for name in impls}
    for r in range(repeats):
        order = impls[r % len(impls):] + impls[: r % len(impls)]
        for name in order:
            proc = run_process(base + [name, wname] + extra, env)
            inner = json.loads(proc["stdout"].strip().splitlines()[-1])
            runs[name].append({**inner, "process_wall_s": proc["wall_s"], "process_cpu_s": proc["cpu_s"]})
        log("  fresh round %d (load %.1f): %s" % (r + 1, os.getloadavg()[0], "  ".join(
            f"{n} fit {runs[n][-1]['fit_wall_s']:.2f}s/process {runs[n][-1]['process_wall_s']:.2f}s"
            for n in impls)))
    rows = {}
    col = {key: {n: [x[key] for x in runs[n]] for n in impls}
           for key in ("fit_wall_s", "fit_cpu_s", "process_wall_s", "process_cpu_s", "impl_import_s", "val_acc")}
    for name in impls:
        row = {key: statistics.median(col[key][name]) for key in col}
        row["all"] = [{k: v for k, v in x.items() if k != "modules"} for x in runs[name]]
        row["modules"] = len(runs[name][0]["modules"])  # besides fittorch's own and the harness's
        if BASELINE in impls:  # what this one imported that the hand-optimized loop did not
            row["modules_beyond_hand"] = sorted(set(runs[name][0]["modules"]) - set(runs[BASELINE][0]["modules"]))
        for ref, label in ((BASELINE, "hand"), (LESSON, "lesson")):
            for key, short in (("fit_wall_s", "fit_wall"), ("fit_cpu_s", "fit_cpu"), ("process_wall_s", "proc_wall")):
                row[f"vs_{label}_{short}"] = _ratio(col[key][ref], col[key][name]) if ref in impls else None
        rows[name] = row
    return {"workload": wname, "threads": threads, "repeats": repeats, "epochs": epochs, "rows": rows,
            "steps": runs[impls[0]][0]["steps"]}


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def fresh_table(res: dict, title: str) -> str:
    lines = [f"### {res['workload']}, fresh process: {title} ({res['threads']} thread(s), {res['repeats']} rounds)", "",
             "| implementation | training call s (wall) | CPU s | speed vs hand-optimized, wall / CPU | "
             "speed vs lesson loop, wall / CPU | whole process s (wall) | whole process vs lesson | "
             "library import s | modules loaded | val acc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in sorted(res["rows"].items(), key=lambda kv: kv[1]["fit_wall_s"]):
        lines.append(f"| {name} | {r['fit_wall_s']:.3f} | {r['fit_cpu_s']:.3f} | "
                     f"{_f(r['vs_hand_fit_wall'])} / {_f(r['vs_hand_fit_cpu'])} | "
                     f"{_f(r['vs_lesson_fit_wall'])} / {_f(r['vs_lesson_fit_cpu'])} | {r['process_wall_s']:.2f} | "
                     f"{_f(r['vs_lesson_proc_wall'])} | {r['impl_import_s']:.3f} | {r.get('modules', '-')} | "
                     f"{r['val_acc']:.3f} |")
    if not any("modules" in r for r in res["rows"].values()):  # results saved before that column existed
        return "\n".join(lines)
    extra = {n: r["modules_beyond_hand"] for n, r in res["rows"].items() if r.get("modules_beyond_hand")}
    lines.append("\nModules (besides fittorch's own) imported beyond the hand-optimized loop's: "
                 + ("; ".join(f"{n}: {', '.join(m[:12])}{' ...' if len(m) > 12 else ''}" for n, m in extra.items())
                    if extra else "none") + ".")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI latency

CONFIG = """\
data: {source: data.csv, target: label, test_split: 0.2}
model: {type: mlp, hidden: [32]}
train: {epochs: 5, batch_size: 32}
"""


def _fittorch() -> list[str]:
    script = Path(sys.executable).parent / "fittorch"  # the console script a user runs, if installed here
    return [str(script)] if script.exists() else [sys.executable, "-m", "fittorch"]


def _make_run(tmp: Path, env: dict) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 8)).round(4)
    y = np.array(["setosa", "versicolor", "virginica"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    header = ",".join([f"f{i}" for i in range(8)])
    np.savetxt(tmp / "data.csv", np.column_stack([X.astype(object), y]), fmt="%s", delimiter=",",
               header=header + ",label", comments="")
    np.savetxt(tmp / "new20.csv", X[:20], fmt="%.4f", delimiter=",", header=header, comments="")
    (tmp / "config.yaml").write_text(CONFIG)
    run_process(_fittorch() + ["fit", "config.yaml", "--out", "runs", "--quiet"], env, cwd=tmp)
    return next((tmp / "runs").iterdir())


PENGUINS = HERE.parent / "examples" / "data" / "penguins.csv"  # text columns, NA cells


def _make_tabular_run(tmp: Path, env: dict) -> Path:
    """The example penguins as they come (examples/configs/penguins.yaml, 5 epochs), and 20 raw rows
    to predict (text categories, NA gaps) and 20 labelled ones to evaluate."""
    lines = PENGUINS.read_text(encoding="utf-8").splitlines()
    (tmp / "penguins.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp / "pen_labelled20.csv").write_text("\n".join(lines[:21]) + "\n", encoding="utf-8")
    (tmp / "pen_new20.csv").write_text("\n".join(",".join(ln.split(",")[1:]) for ln in lines[:21]) + "\n",
                                       encoding="utf-8")  # species is the first column
    (tmp / "penguins.yaml").write_text(
        "name: penguins\nseed: 0\ndata: {source: penguins.csv, target: species, categorical: [year], "
        "val_split: 0.15, test_split: 0.2}\nmodel: {type: mlp, hidden: [32]}\n"
        "train: {epochs: 5, batch_size: 16}\n")
    run_process(_fittorch() + ["fit", "penguins.yaml", "--out", "runs", "--quiet"], env, cwd=tmp)
    return tmp / "runs" / "penguins"


def cli_latency(repeats: int, log, baseline_src: str | None = None) -> dict:
    """Each command in a new process, alternating. ``baseline_src``: also run every fittorch
    command with that checkout's ``src`` (e.g. the main branch), rows marked "before:"."""
    env = child_env(1)
    ft = _fittorch()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run_dir = _make_run(tmp, env).relative_to(tmp)
        pen_dir = _make_tabular_run(tmp, env).relative_to(tmp)
        fittorch_commands = {
            "fittorch --help": ["--help"],
            "fittorch runs (2 runs)": ["runs"],
            "fittorch predict RUN new20.csv (20 rows, numeric)": ["predict", str(run_dir), "new20.csv"],
            "fittorch predict PENGUINS pen_new20.csv (20 rows, text + NA)": ["predict", str(pen_dir), "pen_new20.csv"],
            "fittorch evaluate PENGUINS pen_labelled20.csv (20 rows)": ["evaluate", str(pen_dir), "pen_labelled20.csv"],
            "fittorch evaluate RUN (its test split)": ["evaluate", str(run_dir)],
        }
        commands = {
            'python -c "import torch"': ([sys.executable, "-c", "import torch"], env),
            'python -c "import torch, pandas"': ([sys.executable, "-c", "import torch, pandas"], env),
            **{name: (ft + argv, env) for name, argv in fittorch_commands.items()},
        }
        if baseline_src:
            before = {**env, "PYTHONPATH": str(Path(baseline_src).resolve())}
            commands.update({f"before: {name}": ([sys.executable, "-m", "fittorch", *argv], before)
                             for name, argv in fittorch_commands.items()})
        names = list(commands)
        for name in names:  # untimed warm-up
            run_process(commands[name][0], commands[name][1], cwd=tmp)
        runs: dict[str, list[dict]] = {n: [] for n in names}
        for r in range(repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                runs[name].append(run_process(*commands[name], cwd=tmp))
            log("  cli round %d (load %.1f): %s" % (r + 1, os.getloadavg()[0], "  ".join(
                f"{n.split(' (')[0]} {runs[n][-1]['wall_s']:.2f}s" for n in names)))
    torch_wall = [x["wall_s"] for x in runs[names[0]]]
    torch_cpu = [x["cpu_s"] for x in runs[names[0]]]
    rows = {}
    for name in names:
        wall, cpu = [x["wall_s"] for x in runs[name]], [x["cpu_s"] for x in runs[name]]
        rows[name] = {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu), "wall": wall, "cpu": cpu,
                      "minus_torch_wall_s": statistics.median(a - b for a, b in zip(wall, torch_wall)),
                      "minus_torch_cpu_s": statistics.median(a - b for a, b in zip(cpu, torch_cpu))}
    return {"repeats": repeats, "rows": rows, "load": os.getloadavg()[0]}


def cli_table(res: dict) -> str:
    load = f", load average {res['load']:.1f} at the end" if "load" in res else ""
    lines = [f"### CLI latency, fresh processes ({res['repeats']} rounds{load})", "",
             "| command | wall s (median) | CPU s (median) | minus `import torch`, wall | minus `import torch`, CPU |",
             "|---|---:|---:|---:|---:|"]
    for name, r in res["rows"].items():
        lines.append(f"| `{name}` | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | {r['minus_torch_wall_s']:+.3f} | "
                     f"{r['minus_torch_cpu_s']:+.3f} |")
    return "\n".join(lines)
