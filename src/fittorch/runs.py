"""Run directories: one folder per ``fittorch fit``, and the table that compares them.

``runs/NAME/`` (then ``NAME-2``, ``NAME-3``, ... never overwriting) holds::

    config.yaml          the fully resolved config (what `resume` rebuilds from)
    run.json             status, start/end, versions, command line, best/final/test metrics
    metrics.csv          one row per epoch (rewritten as each epoch ends)
    curves.png           loss and metric curves (+ report.html with the report module)
    model.safetensors    the trained weights
    model.json           model spec + preprocessing: scaler, label classes, feature names
    checkpoints/         full run state for `fittorch resume`

See docs/run-directory.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ._version import __version__
from .errors import CheckpointError, ConfigError

from .signals import EXIT_INTERRUPTED  # the exit code of an interrupted-but-resumable run

RUN_FILES = ("config.yaml", "run.json", "metrics.csv", "model.safetensors", "model.json")


# ---------------------------------------------------------------------------------------
# Folders and run.json


def next_run_dir(out: str | os.PathLike, name: str) -> Path:
    """``out/name``, or ``out/name-2``, ``-3``, ... the first that does not exist yet."""
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"Run name {name!r} is not a folder name. Use letters, digits, '-' and '_'.")
    out = Path(out)
    candidate, n = out / name, 1
    while candidate.exists():
        n += 1
        candidate = out / f"{name}-{n}"
    return candidate


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict:
    import numpy
    import torch

    out = {"fittorch": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
           "python": platform.python_version()}
    try:
        import sklearn

        out["scikit-learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def command_line() -> list[str]:
    return ["fittorch", *sys.argv[1:]]


def read_run_json(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"status": "damaged"}


def write_run_json(run_dir: str | os.PathLike, info: dict) -> None:
    """Atomic: write a temporary file, then rename it over run.json."""
    path = Path(run_dir) / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2, default=_json_default))
    os.replace(tmp, path)


def update_run_json(run_dir, **fields) -> dict:
    info = read_run_json(run_dir)
    info.update(fields)
    write_run_json(run_dir, info)
    return info


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def check_run_dir(run_dir: str | os.PathLike, need=("config.yaml",)) -> Path:
    p = Path(run_dir)
    if not p.is_dir():
        raise ConfigError(f"Run directory {str(p)!r} does not exist. List runs with: fittorch runs")
    for name in need:
        if not (p / name).exists():
            raise ConfigError(f"{p} has no {name}; it is not a finished fittorch run directory "
                              f"(it holds: {', '.join(sorted(x.name for x in p.iterdir())) or 'nothing'}).")
    return p


# ---------------------------------------------------------------------------------------
# Running an experiment inside its folder


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch (or a plain process): the one that writes the run's files."""
    return int(os.environ.get("RANK", "0")) == 0


def execute(exp, run_dir: Path, *, resume: bool = False, quiet: bool = False, log=print) -> int:
    """Fit ``exp`` inside ``run_dir``; keep run.json current; save model and artifacts. Returns the exit code.

    Under torchrun every rank trains (and evaluates: it is a collective), rank 0 alone writes files.
    """
    trainer, cfg = exp.trainer, exp.config
    main = is_main_process()
    say = log if (main and not quiet) else (lambda *a, **k: None)
    info = read_run_json(run_dir)
    started = time.time()
    if resume:
        info.setdefault("resumed", []).append({"at": now(), "command": command_line()})
    else:
        info.update({"name": run_dir.name, "started": now(), "command": command_line(), "versions": versions(),
                     "task": exp.prep.task, "source": cfg.data.source, "sizes": exp.splits.sizes,
                     "device": str(trainer.device), "max_epochs": cfg.train.epochs, "seconds": 0.0})
    info.update({"status": "running", "pid": os.getpid(), "ended": None})
    info.pop("error", None)
    if main:
        write_run_json(run_dir, info)
    sizes = ", ".join(f"{k} {v}" for k, v in exp.splits.sizes.items() if v)
    say(f"{'Resuming' if resume else 'Run'} {run_dir} | task {exp.prep.task} | {sizes} rows | device {trainer.device}")
    fit_args = dict(exp.fit_kwargs())
    if resume:
        fit_args["resume"] = "last"
    try:
        trainer.fit(exp.splits.train, exp.splits.val, **fit_args)
    except BaseException as exc:
        if main:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            _finish(run_dir, info, trainer, started, status, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    status = trainer.state.status
    if status == "interrupted":
        if main:
            trainer.history.to_csv(run_dir / "metrics.csv")
            _finish(run_dir, info, trainer, started, "interrupted")
            print(f"Interrupted after epoch {trainer.state.epoch}; the last checkpoint is in "
                  f"{run_dir / 'checkpoints'}.\nContinue with: fittorch resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if exp.splits.test is not None:
        info["test"] = trainer.evaluate(exp.splits.test)
    if not main:
        return 0
    trainer.history.to_csv(run_dir / "metrics.csv")
    save_model_bundle(exp, run_dir)
    _finish(run_dir, info, trainer, started, status)
    write_artifacts(trainer, run_dir, cfg, val=exp.splits.val, labels=exp.prep.classes,
                    total_seconds=read_run_json(run_dir).get("seconds"), log=say)
    say(summary_line(run_dir, read_run_json(run_dir)))
    return 0


def _finish(run_dir, info, trainer, started, status, error=None):
    info["status"] = status
    info["ended"] = now()
    info["seconds"] = round(float(info.get("seconds") or 0.0) + time.time() - started, 3)
    info["epochs"] = trainer.state.epoch
    info["global_step"] = trainer.state.global_step
    if trainer.state.stop_reason:
        info["stop_reason"] = trainer.state.stop_reason
    if error:
        info["error"] = error
    info["final"] = {k: v for k, v in trainer.history.last.items() if k not in ("epoch", "seconds")}
    monitor = read_monitor(run_dir)
    best = trainer.history.best(monitor) if monitor in trainer.history.columns else {}
    info["best"] = {"monitor": monitor, "value": best.get(monitor), "epoch": best.get("epoch")} if best else None
    info.pop("pid", None)
    write_run_json(run_dir, info)


def read_monitor(run_dir) -> str:
    try:
        import yaml

        cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
        return cfg.get("monitor") or "val_loss"
    except (OSError, ValueError):
        return "val_loss"


def summary_line(run_dir, info: dict) -> str:
    parts = [f"{info.get('status', '?')} after {info.get('epochs', '?')} epochs ({info.get('seconds', 0):.1f} s)"]
    best = info.get("best")
    if best and best.get("value") is not None:
        parts.append(f"best {best['monitor']} {best['value']:.4f} (epoch {best['epoch']})")
    for key, value in (info.get("test") or {}).items():
        parts.append(f"test {key} {value:.4f}")
    return " | ".join(parts) + f" -> {run_dir}"


def write_artifacts(trainer, run_dir: Path, cfg, *, val=None, labels=None, total_seconds=None, log=print) -> None:
    """curves.png (+ report.html, confusion_matrix.png with the report module)."""
    from .report import write_run_artifacts

    try:
        write_run_artifacts(trainer, run_dir, val=val, config=cfg.to_dict(), name=run_dir.name,
                            labels=[str(c) for c in labels] if labels else None, total_seconds=total_seconds)
    except Exception as exc:  # noqa: BLE001 - a plot must not turn a finished run into a failure
        log(f"warning: could not write the plots/report ({type(exc).__name__}: {exc}). "
            f"Rebuild them with: fittorch report {run_dir}")


# ---------------------------------------------------------------------------------------
# The model bundle: weights + everything to rebuild model and preprocessing


def save_model_bundle(exp, run_dir: Path) -> Path:
    prep = exp.prep
    return exp.trainer.save(run_dir / "model.safetensors", metadata={
        "task": prep.task, "classes": prep.classes, "feature_names": prep.feature_names, "target": prep.target,
        "preprocessing": prep.to_dict(), "model_config": exp.config.model.model_dump(mode="json"),
        "loss": exp.trainer.loss_info.name if exp.trainer.loss_info else None,
    })


def load_run(run_dir: str | os.PathLike, *, checkpoint: str | None = None):
    """(config, Preprocessing, Trainer with the trained weights) of a run directory.

    ``checkpoint``: ``"best"`` or ``"last"`` loads that checkpoint's weights instead of the final model.
    """
    from .config import load_config
    from .experiment import Preprocessing, build_trainer
    from .serialization import read_metadata

    run_dir = check_run_dir(run_dir, need=("config.yaml", "model.json", "model.safetensors"))
    cfg = load_config(run_dir / "config.yaml")
    meta = read_metadata(run_dir / "model.safetensors")
    if "preprocessing" not in meta:
        raise CheckpointError(f"{run_dir / 'model.json'} has no 'preprocessing' entry; it was not written by "
                              "`fittorch fit`. Use fittorch.load() for a bare model file.")
    prep = Preprocessing.from_dict(meta["preprocessing"])
    trainer = build_trainer(cfg, prep, run_dir=None, quiet=True, inference=True)  # no optimizer: no dynamo
    trainer.load(run_dir / "model.safetensors")  # also restores the output kind for metrics
    if prep.classes is not None and getattr(trainer, "classes", None) is not None:
        # model.json names the original labels (for Trainer.load users); the CLI encodes labels
        # itself with `prep`, so this trainer sees the class indices it was trained on.
        trainer.classes = list(range(len(prep.classes)))
    if checkpoint is not None:
        from .serialization import load_into, unwrap

        path, state = checkpoint_state(run_dir, checkpoint, cfg.monitor)
        load_into(unwrap(trainer.model), {k: v.to(trainer.device) for k, v in state.items()}, source=str(path))
    return cfg, prep, trainer


def checkpoint_state(run_dir: Path, which: str, monitor: str = "val_loss"):
    """(path, model state dict) of the ``best`` or ``last`` checkpoint in ``run_dir/checkpoints``."""
    from .checkpoint import best_by, latest, load_checkpoint

    ckpt = Path(run_dir) / "checkpoints"
    path = None
    if ckpt.is_dir():
        path = best_by(ckpt, monitor) if which == "best" else latest(ckpt)
    if path is None:
        raise CheckpointError(f"No {which} checkpoint in {ckpt}. Evaluate the final model instead "
                              "(leave out --checkpoint).")
    return path, load_checkpoint(path).model_state


# ---------------------------------------------------------------------------------------
# The runs table


def list_runs(runs_dir: str | os.PathLike = "runs") -> list[dict]:
    root = Path(runs_dir)
    if not root.is_dir():
        raise ConfigError(f"Runs folder {str(root)!r} does not exist. Train first: fittorch fit CONFIG.yaml "
                          "(or pass the folder given to --out).")
    rows = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        info = read_run_json(d)
        if not info and not (d / "config.yaml").exists():
            continue
        status = info.get("status", "unknown")
        if status == "running" and info.get("pid") and not _alive(info["pid"]):
            status = "died"  # killed without a chance to record it (SIGKILL, power loss)
        best = info.get("best") or {}
        rows.append({"name": d.name, "status": status, "epochs": info.get("epochs"),
                     "max_epochs": info.get("max_epochs"), "best_metric": best.get("monitor"),
                     "best": best.get("value"), "best_epoch": best.get("epoch"), "test": info.get("test") or {},
                     "seconds": info.get("seconds"), "started": info.get("started") or "", "path": str(d)})
    return sorted(rows, key=lambda r: (r["started"], r["name"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


def format_runs(rows: list[dict]) -> str:
    header = ["NAME", "STATUS", "EPOCHS", "BEST", "TEST", "TIME", "STARTED"]
    table = [header]
    for r in rows:
        epochs = f"{r['epochs'] if r['epochs'] is not None else '-'}/{r['max_epochs'] or '-'}"
        best = (f"{r['best_metric']} {r['best']:.4f} @{r['best_epoch']}" if r["best"] is not None else "-")
        test = " ".join(f"{k} {v:.4f}" for k, v in r["test"].items() if k != "loss") or "-"
        secs = f"{r['seconds']:.1f}s" if isinstance(r["seconds"], (int, float)) else "-"
        table.append([r["name"], r["status"], epochs, best, test, secs, r["started"].replace("+00:00", "Z")])
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)
