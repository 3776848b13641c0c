"""The Python snippets in docs/config.md and docs/run-directory.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fittorch.cli import main

ROOT = Path(__file__).resolve().parents[1]


def snippets(doc: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / doc).read_text(), flags=re.S)


@pytest.mark.parametrize("doc", ["config.md", "run-directory.md"])
def test_python_snippets_run(doc, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    if doc == "run-directory.md":
        assert main(["fit", "examples/configs/iris_csv.yaml", "--quiet", "--set", "train.epochs=3"]) == 0
    blocks = snippets(doc)
    assert blocks
    for block in blocks:
        exec(compile(block, f"docs/{doc}", "exec"), {})
    assert capsys.readouterr().out
