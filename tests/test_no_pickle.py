"""No code path of the library may unpickle: scan the source for the ways it could."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "fittorch"

FORBIDDEN = [
    (re.compile(r"weights_only\s*=\s*False"), "torch.load(weights_only=False) unpickles arbitrary objects"),
    (re.compile(r"\bpickle\.loads?\b"), "pickle.load runs code from the file"),
    (re.compile(r"\b(cPickle|dill|cloudpickle|joblib)\b"), "pickle-based serialisers run code from the file"),
    (re.compile(r"\bnp\.load\([^)]*allow_pickle\s*=\s*True"), "numpy allow_pickle=True unpickles"),
    (re.compile(r"\bmarshal\.loads?\b"), "marshal loads code objects"),
]
TORCH_LOAD = re.compile(r"\btorch\.load\(")


def _sources():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, f"found only {len(files)} source files under {SRC}"
    return files


def test_no_unpickling_anywhere_in_the_library():
    problems = []
    for path in _sources():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for pattern, why in FORBIDDEN:
                if pattern.search(line):
                    problems.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}  ({why})")
    assert not problems, "unsafe loading in the library:\n" + "\n".join(problems)


def test_every_torch_load_is_weights_only():
    problems = []
    for path in _sources():
        text = path.read_text()
        for m in TORCH_LOAD.finditer(text):
            call = text[m.start(): text.find(")", m.end()) + 1]
            if not re.search(r"weights_only\s*=\s*True", call):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{path.relative_to(SRC)}:{line}: {call}")
    assert not problems, "torch.load without weights_only=True:\n" + "\n".join(problems)


def test_the_scan_would_catch_a_violation(tmp_path):
    bad = "state = torch.load(path, weights_only=False)\nobj = pickle.load(f)\n"
    hits = [why for line in bad.splitlines() for pattern, why in FORBIDDEN if pattern.search(line)]
    assert len(hits) == 2
    assert TORCH_LOAD.search("x = torch.load(p)")


def test_the_scan_covers_the_tabular_preprocessing():
    """The saved preprocessing (fittorch.tabular) is JSON through a schema: its code is scanned too."""
    names = {str(p.relative_to(SRC)) for p in _sources()}
    assert {"tabular/preprocessor.py", "tabular/schema.py", "tabular/columns.py", "sklearn/_tabular.py"} <= names
    text = "".join((SRC / "tabular" / n).read_text() for n in ("preprocessor.py", "schema.py"))
    assert "json.loads" in text and "model_validate" in text and "pickle" not in text
