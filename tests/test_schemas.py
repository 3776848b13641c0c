"""The JSON files of a run folder as untrusted input: unit checks, then a fuzz test on a real run.

The fuzz test (hypothesis) mutates ``manifest.json``, ``state.json`` (with hashes made consistent
again, so the schema and restore paths are reached, not only the hash check), ``model.json`` and
``run.json`` of a real run: deletions, type swaps, huge values, NaN, deep nesting. Each case runs
the commands that read that file; every outcome must be success or a fittorch error (exit 1 or 2),
never a raw exception, never a hang, never a write outside the run folder. The number of cases
run is printed (``-s``) and bounded by ``FITTORCH_FUZZ_EXAMPLES`` (default 30, about a minute).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fittorch import schemas
from fittorch.errors import CheckpointError
from test_runs_trust import base_run  # noqa: F401 - fixture: one real finished run

EXAMPLES = int(os.environ.get("FITTORCH_FUZZ_EXAMPLES", "30"))
DEEP = "__DEEP__"
EVIL = [None, True, -1, 0, 10**30, 1e308, float("nan"), float("inf"), "", "x" * 5000, [], {}, [1, "a"],
        {"a": {"b": 1}}, DEEP, "../../outside", 2**63]
CASES = {"n": 0, "outcomes": {}}


def test_loads_refuses_deep_nesting_and_nan():
    with pytest.raises(ValueError, match="nested deeper"):
        schemas.loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="NaN is not JSON"):
        schemas.loads('{"a": NaN}')
    assert schemas.loads('{"a": NaN}', allow_nan=True)["a"] != 0


def test_preprocessing_schema_checks_lengths_finiteness_and_scales():
    ok = {"task": "regression", "feature_names": ["a", "b"], "mean": [0.0, 1.0], "scale": [1.0, 2.0]}
    schemas.PreprocessingSchema.model_validate(ok)
    for bad in ({"mean": [0.0]}, {"scale": [1.0, 0.0]}, {"mean": [0.0, float("nan")]},
                {"task": "classification"}, {"feature_names": ["a", "b"], "classes": ["x", "x"]}):
        with pytest.raises(ValueError):
            schemas.PreprocessingSchema.model_validate({**ok, **bad})


def test_parse_json_names_the_file_and_the_problem():
    with pytest.raises(CheckpointError, match=r"m\.json is damaged or not written by fittorch: files"):
        schemas.parse_json(b'{"format": "fittorch-checkpoint", "version": 1, "files": []}', schemas.Manifest,
                           what="m.json", error=CheckpointError)


# -- the fuzz test -------------------------------------------------------------------------------
def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree[:20]):
            yield from _paths(v, (*prefix, i))


def _mutate(tree, ops):
    for where, kind, value in ops:
        paths = [p for p in _paths(tree) if p]
        if not paths:
            return value
        path = paths[where % len(paths)]
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        if kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return tree


def _rehash(ckpt: Path, name: str) -> None:
    manifest = json.loads((ckpt / "manifest.json").read_text())
    data = (ckpt / name).read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (ckpt / "manifest.json").write_text(json.dumps(manifest))


def _snapshot(root: Path, skip: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if skip not in p.parents and p != skip and p.is_file()}


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang("a command ran past 30 s")


ops_strategy = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["delete", "replace"]),
                                  st.sampled_from(EVIL)), min_size=1, max_size=3)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.generate],  # no shrinking: CI cost
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.sampled_from(["manifest.json", "state.json", "model.json", "run.json"]), ops=ops_strategy)
def test_fuzzed_run_files_give_success_or_a_fittorch_error(base_run, tmp_path_factory, which, ops):
    from fittorch.checkpoint import latest
    from fittorch.cli import main

    work = tmp_path_factory.mktemp("case")
    shutil.copytree(base_run, work, dirs_exist_ok=True)
    run = work / "runs" / "base"
    ckpt = latest(run / "checkpoints")
    target = ckpt / which if which in ("manifest.json", "state.json") else run / which
    tree = _mutate(json.loads(target.read_text()), ops)
    text = json.dumps(tree).replace(json.dumps(DEEP), "[" * 50_000 + "]" * 50_000)
    target.write_text(text)
    if which == "state.json":
        _rehash(ckpt, which)  # consistent hashes: the values themselves are what is tested
    commands = {"manifest.json": [["evaluate", str(run), "--checkpoint", "last"],
                                  ["resume", str(run), "--epochs", "4"]],
                "state.json": [["resume", str(run), "--epochs", "4"]],
                "model.json": [["predict", str(run), str(work / "new.csv")]],
                "run.json": [["runs", str(run.parent)], ["resume", str(run), "--epochs", "4"]]}[which]
    before = _snapshot(work, run)
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for args in commands:
            err = io.StringIO()
            signal.alarm(30)
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                code = main([*args, "--quiet"] if args[0] == "resume" else args)
            signal.alarm(0)
            message = err.getvalue()
            assert code in (0, 1, 2), (which, ops, args, code, message)
            assert "Traceback" not in message, (which, ops, args, message[-2000:])
            if code:  # a fittorch error, not "fittorch: KeyError: ..."
                assert re.search(r"^fittorch: error:", message, re.M), (which, ops, args, message[-2000:])
            CASES["outcomes"][code] = CASES["outcomes"].get(code, 0) + 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert _snapshot(work, run) == before, "a file outside the run folder was written"
    CASES["n"] += 1
    shutil.rmtree(work, ignore_errors=True)


def test_fuzz_cases_were_run():
    print(f"\nfuzz: {CASES['n']} cases, exit codes {CASES['outcomes']}")
    assert CASES["n"] >= min(EXAMPLES, 10)
