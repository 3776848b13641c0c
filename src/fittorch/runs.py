"""Run directories: one folder per ``fittorch fit``, and the table that compares them.

``runs/NAME/`` (then ``NAME-2``, ``NAME-3``, ... never overwriting) holds::

    config.yaml          the fully resolved config (what `resume` rebuilds from)
    run.json             status, start/end, versions, command line, best/final/test metrics
    metrics.csv          one row per epoch (rewritten as each epoch ends)
    curves.png           loss and metric curves (+ report.html with the report module)
    model.safetensors    the trained weights
    model.json           model spec + preprocessing: scaler, label classes, feature names
    split.safetensors    which source rows are train/val/test, and the source file's SHA-256
    checkpoints/         full run state for `fittorch resume`

See docs/run-directory.md.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ._version import __version__
from . import safeio, strictjson
from .errors import CheckpointError, ConfigError
from .rundir import check_run_name
from .safeio import atomic_write

from .signals import EXIT_INTERRUPTED  # the exit code of an interrupted-but-resumable run

RUN_FILES = ("config.yaml", "run.json", "metrics.csv", "model.safetensors", "model.json")


# ---------------------------------------------------------------------------------------
# Folders and run.json


def next_run_dir(out: str | os.PathLike, name: str) -> Path:
    """``out/name``, or ``out/name-2``, ``-3``, ... the first that does not exist yet (not created)."""
    check_run_name(name)
    out = Path(out)
    candidate, n = out / name, 1
    while candidate.exists() or candidate.is_symlink():
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
    import sklearn

    out["scikit-learn"] = sklearn.__version__
    return out


def command_line() -> list[str]:
    return ["fittorch", *sys.argv[1:]]


def read_run_json(run_dir: str | os.PathLike) -> dict:
    """run.json, read with a bound and validated; ``{"status": "damaged", ...}`` when it cannot be used.

    A run.json that is plainly valid (:func:`plainly_valid_run_json`) is accepted without
    pydantic, which ``fittorch runs`` would otherwise import for this alone; anything else goes
    through :class:`fittorch.schemas.RunJson` for the verdict and its message.
    """
    path = Path(run_dir) / "run.json"
    try:
        data = safeio.read_regular(path, max_bytes=safeio.MAX_JSON, root=path.parent, what="run.json")
        try:
            raw = strictjson.loads(data, allow_nan=True)
        except ValueError:
            raw = None  # schemas.parse_json words the message
        if not plainly_valid_run_json(raw):
            from . import schemas

            raw, _ = schemas.parse_json(data, schemas.RunJson, what=str(path), error=CheckpointError, allow_nan=True)
    except FileNotFoundError:
        return {}
    except (safeio.UnsafeFile, CheckpointError) as exc:
        return {"status": "damaged", "damaged": str(exc)}
    return raw


_RUN_TEXT, _RUN_COUNTS = ("name", "status", "started"), ("epochs", "max_epochs", "pid")


def plainly_valid_run_json(raw) -> bool:
    """True only for a run.json that :class:`fittorch.schemas.RunJson` accepts as well (plain JSON
    types within its bounds); False sends it to RunJson (tests/test_runs.py checks the implication)."""
    if type(raw) is not dict:
        return False
    if not all(_text(raw.get(k)) for k in _RUN_TEXT) or not all(_count(raw.get(k)) for k in _RUN_COUNTS):
        return False
    seconds, best, test, final = (raw.get(k) for k in ("seconds", "best", "test", "final"))
    if not (seconds is None or (_number(seconds) and math.isfinite(seconds))):
        return False
    if best is not None and not (type(best) is dict and _text(best.get("monitor")) and _count(best.get("epoch"))
                                 and (best.get("value") is None or _number(best["value"]))):
        return False
    if test is not None and not (type(test) is dict and all(_text(k) and (v is None or _number(v))
                                                            for k, v in test.items())):
        return False
    return final is None or (type(final) is dict and all(_text(k) for k in final))


def _text(v) -> bool:
    return v is None or (type(v) is str and len(v) <= strictjson.MAX_STR)


def _count(v) -> bool:
    return v is None or (type(v) is int and 0 <= v <= 1 << 62)


def _number(v) -> bool:  # what a pydantic float field takes as it is (an int that a float holds exactly)
    return type(v) is float or (type(v) is int and abs(v) <= 1 << 53)


def write_run_json(run_dir: str | os.PathLike, info: dict) -> None:
    """Atomic: write a temporary file, then rename it over run.json."""
    atomic_write(Path(run_dir) / "run.json", json.dumps(info, indent=2, default=_json_default))


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
        info["task"] = exp.prep.task  # a folder of fittorch 0.1/0.2 said "classification"
    else:
        info.update({"name": run_dir.name, "started": now(), "command": command_line(), "versions": versions(),
                     "task": exp.prep.task, "source": cfg.data.source, "sizes": exp.splits.sizes,
                     "device": str(trainer.device), "max_epochs": cfg.train.epochs, "seconds": 0.0})
    info.update({"status": "running", "pid": os.getpid(), "ended": None})
    info.pop("error", None)
    if main:
        write_run_json(run_dir, info)
        if not resume:  # which rows trained, validated and tested: evaluate and report read them back
            from . import splitrecord  # numpy: `fittorch runs` imports this module and must stay light

            splitrecord.write(run_dir, cfg.data.source, exp.splits.rows)
    sizes = ", ".join(f"{k} {v}" for k, v in exp.splits.sizes.items() if v)
    unit = "labels" if exp.prep.task == "multilabel" else "classes"
    classes = f" ({len(exp.prep.classes)} {unit})" if exp.prep.task != "regression" and exp.prep.classes else ""
    say(f"{'Resuming' if resume else 'Run'} {run_dir} | task {exp.prep.task}{classes} | {sizes} rows | "
        f"device {trainer.device}")
    fit_args = dict(exp.fit_kwargs())
    if resume:
        fit_args["resume"] = "last"
    try:
        trainer.fit(exp.splits.train, exp.splits.val, **fit_args)
    except BaseException as exc:
        if main:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            if status == "interrupted":
                exit_at_once_on_signal()
            _finish(run_dir, info, trainer, started, status, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
            _write_partial(trainer, run_dir, cfg, say)
        raise
    status = trainer.state.status
    if status == "interrupted":
        if main:
            exit_at_once_on_signal(EXIT_INTERRUPTED)  # the checkpoint is saved: a further Ctrl-C leaves, quietly
            trainer.history.to_csv(run_dir / "metrics.csv")
            _finish(run_dir, info, trainer, started, "interrupted")
            _write_partial(trainer, run_dir, cfg, say)
            print(f"Interrupted after epoch {trainer.state.epoch}; the last checkpoint is in "
                  f"{run_dir / 'checkpoints'}.\nContinue with: fittorch resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if exp.splits.test is not None:
        info["test"] = trainer.evaluate(exp.splits.test)
    if not main:
        return 0
    trainer.history.to_csv(run_dir / "metrics.csv")
    save_model_bundle(exp, run_dir)
    _finish(run_dir, info, trainer, started, status, val=exp.splits.val)
    run = read_run_json(run_dir)
    write_artifacts(trainer, run_dir, cfg, val=exp.splits.val, labels=exp.prep.classes,
                    total_seconds=run.get("seconds"), log=say, run=run)
    say(summary_line(run_dir, read_run_json(run_dir)))
    return 0


def exit_at_once_on_signal(code: int | None = None) -> None:
    """After an interrupted run is saved, a further Ctrl-C/SIGTERM ends the process at once and
    quietly (no KeyboardInterrupt raised inside interpreter shutdown's atexit callbacks), with
    ``code`` (default: 128 + the signal's number)."""
    import signal

    def _exit(signum, frame):
        os._exit(code if code is not None else 128 + signum)

    for sig in (getattr(signal, "SIGTERM", None), signal.SIGINT):
        if sig is not None:
            signal.signal(sig, _exit)


def _write_partial(trainer, run_dir: Path, cfg, say) -> None:
    """An interrupted or failed run's curves and report.html (no confusion matrix: the weights are partial)."""
    if trainer.dist.is_main:
        write_artifacts(trainer, run_dir, cfg, total_seconds=read_run_json(run_dir).get("seconds"), log=say,
                        run=read_run_json(run_dir))


def _finish(run_dir, info, trainer, started, status, error=None, val=None):
    info["status"] = status
    info["ended"] = now()
    info["seconds"] = round(float(info.get("seconds") or 0.0) + time.time() - started, 3)
    info["epochs"] = trainer.state.epoch
    info["max_epochs"] = trainer.state.max_epochs or info.get("max_epochs")
    info["global_step"] = trainer.state.global_step
    info["stop_reason"] = trainer.state.stop_reason or ""
    if error:
        info["error"] = error
    info["final"] = {k: v for k, v in trainer.history.last.items() if k not in ("epoch", "seconds")}
    monitor = read_monitor(run_dir)
    best = trainer.history.best(monitor) if monitor in trainer.history.columns else {}
    info["best"] = {"monitor": monitor, "value": best.get(monitor), "epoch": best.get("epoch")} if best else None
    info["restored_best_epoch"] = getattr(trainer.state, "restored_best_epoch", None)
    checkpoint = getattr(trainer, "checkpoint_path", None)
    info["checkpoint"] = str(checkpoint) if checkpoint else None
    from .report import summary_text, system_info  # what the report shows, so `fittorch report` rebuilds it

    info["system"] = system_info(trainer)
    info["model_summary"] = summary_text(trainer, val)
    info.pop("pid", None)
    write_run_json(run_dir, info)


def read_monitor(run_dir) -> str:
    from .config import read_yaml

    try:
        monitor = read_yaml(Path(run_dir) / "config.yaml", root=run_dir).get("monitor")
    except (OSError, ValueError):
        return "val_loss"
    return monitor if isinstance(monitor, str) else "val_loss"


def summary_line(run_dir, info: dict) -> str:
    parts = [f"{info.get('status', '?')} after {info.get('epochs', '?')} epochs ({info.get('seconds', 0):.1f} s)"]
    best = info.get("best")
    if best and best.get("value") is not None:
        parts.append(f"best {best['monitor']} {best['value']:.4f} (epoch {best['epoch']})")
    test = {k: v for k, v in (info.get("test") or {}).items() if isinstance(v, (int, float))}
    for key, value in test.items():
        parts.append(f"test {key} {value:.4f}")
    if test:  # which weights the test figures come from
        restored = info.get("restored_best_epoch")
        parts.append(f"tested with the best weights (epoch {restored})" if restored else
                     f"tested with the last weights (epoch {info.get('epochs', '?')})")
    return " | ".join(parts) + f" -> {run_dir}"


def write_artifacts(trainer, run_dir: Path, cfg, *, val=None, labels=None, total_seconds=None, log=print,
                    run: dict | None = None) -> bool:
    """curves.png (+ report.html, confusion_matrix.png with the report module). False when it failed."""
    from .report import write_run_artifacts

    try:
        write_run_artifacts(trainer, run_dir, val=val, config=cfg.to_dict(), name=run_dir.name,
                            labels=[str(c) for c in labels] if labels else None, total_seconds=total_seconds, run=run)
    except Exception as exc:  # noqa: BLE001 - a plot must not turn a finished run into a failure
        log(f"warning: could not write the plots/report ({type(exc).__name__}: {exc}). "
            f"Rebuild them with: fittorch report {run_dir}")
        return False
    return True


# ---------------------------------------------------------------------------------------
# The model bundle: weights + everything to rebuild model and preprocessing


def save_model_bundle(exp, run_dir: Path) -> Path:
    prep = exp.prep
    return exp.trainer.save(run_dir / "model.safetensors", metadata={
        "task": prep.task, "classes": prep.classes, "feature_names": prep.feature_names, "target": prep.target,
        "preprocessing": prep.to_dict(), "model_config": exp.config.model.model_dump(mode="json"),
        "loss": exp.trainer.loss_info.name if exp.trainer.loss_info else None,
    })


def load_run(run_dir: str | os.PathLike, *, checkpoint: str | None = None, trust_code: bool = False):
    """(config, Preprocessing, Trainer with the trained weights) of a run directory.

    ``checkpoint``: ``"best"`` or ``"last"`` loads that checkpoint's weights instead of the final model.
    Every file is read with a bound and validated; the model is first built on the meta device
    and compared with the weights file's header, so an edited config cannot allocate memory.
    ``model.type: import`` (code named by the run's config) runs only with ``trust_code=True``.
    """
    from .config import load_config
    from .experiment import Preprocessing, build_trainer
    from .serialization import read_metadata

    run_dir = check_run_dir(run_dir, need=("config.yaml", "model.json", "model.safetensors"))
    cfg = load_config(run_dir / "config.yaml", root=run_dir)
    check_trusted(cfg, run_dir, trust_code)
    meta = read_metadata(run_dir / "model.safetensors")
    if meta.get("preprocessing") is None:
        raise CheckpointError(f"{run_dir / 'model.json'} has no 'preprocessing' entry; it was not written by "
                              "`fittorch fit`. Use fittorch.load() for a bare model file.")
    from . import schemas

    schemas.check(meta["preprocessing"], schemas.PreprocessingSchema, what=f"{run_dir / 'model.json'} (preprocessing)",
                  error=CheckpointError)  # one finite mean and positive scale per feature, known classes
    prep = Preprocessing.from_dict(meta["preprocessing"])
    check_model_fits(cfg, prep, run_dir)
    trainer = build_trainer(cfg, prep, run_dir=None, quiet=True, inference=True)  # no optimizer: no dynamo
    try:
        trainer.load(run_dir / "model.safetensors")  # also restores the output kind for metrics
    except (TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, (ConfigError, CheckpointError)):
            raise
        raise CheckpointError(f"{run_dir / 'model.json'} does not describe this model ({type(exc).__name__}: "
                              f"{exc}); the file is damaged.") from None
    if prep.classes is not None and getattr(trainer, "classes", None) is not None:
        # model.json names the original labels (for Trainer.load users); the CLI encodes labels
        # itself with `prep`, so this trainer sees the class indices it was trained on.
        trainer.classes = list(range(len(prep.classes)))
    if checkpoint is not None:
        from .serialization import load_into, unwrap, warn_nonfinite

        path, state = checkpoint_state(run_dir, checkpoint, cfg.monitor)
        load_into(unwrap(trainer.model), {k: v.to(trainer.device) for k, v in state.items()}, source=str(path))
        warn_nonfinite(state, str(path))
    return cfg, prep, trainer


def saved_run_config(checkpoint_dir: str | os.PathLike) -> dict | None:
    """The config the newest intact checkpoint was trained with (``None`` when it records none)."""
    from . import schemas
    from .checkpoint import store
    from .config import upgrade_config

    for path in reversed(store.list_checkpoints(checkpoint_dir)):
        try:
            manifest = store.read_manifest(path)
            raw, _ = schemas.parse_json(store.read_file(path / "state.json", manifest), schemas.StateJson,
                                        what=str(path / "state.json"), error=CheckpointError, allow_nan=True)
        except CheckpointError:
            continue  # damaged: resume falls back past it as well
        config = (raw.get("config") or {}).get("run_config")
        return upgrade_config(config) if isinstance(config, dict) else None  # 0.2's task names read as today
    return None


def check_trusted(cfg, run_dir: Path, trust_code: bool) -> None:
    """``model.type: import`` in a run folder's config runs code: only with the explicit opt-in."""
    if cfg.model.type == "import" and not trust_code:
        raise ConfigError(f"{run_dir / 'config.yaml'} has model.type: import, which would import and run "
                          f"{cfg.model.target!r} (with kwargs {cfg.model.kwargs}). A run folder may come from "
                          "someone else, so this needs your opt-in: check that target, then pass --trust-code.")


def check_model_fits(cfg, prep, run_dir: Path) -> None:
    """Build the config's model on the meta device (no memory) and compare it with the weights file."""
    import torch

    from .experiment import build_model
    from .serialization import check_shapes, header_shapes

    try:
        with torch.device("meta"):
            probe = build_model(cfg, prep.n_inputs, prep.n_outputs, prep)
    except (ConfigError, CheckpointError):
        raise
    except Exception:  # noqa: BLE001 - imported code may not build on the meta device: it is checked on load
        return
    check_shapes(probe, header_shapes(run_dir / "model.safetensors"),
                 source=f"{run_dir / 'model.safetensors'} (config.yaml's model)")


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
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        info = read_run_json(d)  # a damaged run.json gives status "damaged": the other runs are still listed
        if not info and not (d / "config.yaml").exists():
            continue
        if info.get("damaged"):
            info = {"status": "damaged"}
        status, epochs, seconds = observed(d, info)
        best = info.get("best") or {}
        rows.append({"name": d.name, "status": status, "epochs": epochs,
                     "max_epochs": info.get("max_epochs"), "best_metric": best.get("monitor"),
                     "best": best.get("value"), "best_epoch": best.get("epoch"), "test": info.get("test") or {},
                     "seconds": seconds, "started": info.get("started") or "", "path": str(d)})
    return sorted(rows, key=lambda r: (r["started"], r["name"]))


def observed(run_dir: Path, info: dict) -> tuple[str, int | None, float | None]:
    """(status, epochs, seconds) of a run as it stands: a "running" run whose process is gone
    "died", and a run that did not finish reached at least the epochs its checkpoints hold."""
    status = info.get("status", "unknown")
    if status == "running" and info.get("pid") and not _alive(info["pid"]):
        status = "died"  # killed without a chance to record it (SIGKILL, a second Ctrl-C, power loss)
    epochs, seconds = info.get("epochs"), info.get("seconds")
    if status in ("died", "running", "interrupted", "failed"):
        reached = checkpointed_epochs(run_dir)
        if reached is not None and (epochs is None or reached > epochs):
            epochs = reached  # run.json was left behind the checkpoints
        if status == "died" and not seconds:
            seconds = None  # unknown: the process never recorded it
    return status, epochs, seconds


_CHECKPOINT_NAME = re.compile(r"^ckpt-e(\d+)-b(\d+)$")  # checkpoint/store.py's naming (ckpt-e{epochs}-b{batches})


def checkpointed_epochs(run_dir: Path) -> int | None:
    """The epochs completed by the newest complete checkpoint in ``run_dir/checkpoints`` (None if none).

    Read from the folder names and manifests alone: the checkpoint package imports torch, and
    ``fittorch runs`` must not.
    """
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir() or folder.is_symlink():
        return None
    done = [int(m.group(1)) for p in folder.iterdir()
            if (m := _CHECKPOINT_NAME.match(p.name)) and (p / "manifest.json").is_file()]
    return max(done, default=None)


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
        test = " ".join(f"{k} {v:.4f}" for k, v in r["test"].items() if k != "loss" and v is not None) or "-"
        secs = f"{r['seconds']:.1f}s" if isinstance(r["seconds"], (int, float)) else "-"
        table.append([r["name"], r["status"], epochs, best, test, secs, r["started"].replace("+00:00", "Z")])
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)
