"""docs/custom-training.md: every example runs as a script, reaches its figure, and prints it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-training.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
TITLES = re.findall(r"^## (\d+)\. ", DOC.read_text(), flags=re.M)


def test_the_doc_has_every_example_the_issue_asks_for():
    text = DOC.read_text()
    for title in ("auxiliary head", "dict-output", "computes its own loss", "distillation", "Multi-label",
                  "Mixup", "Variable-length", "GAN with two optimizers", "gradient penalty"):
        assert title in text, title
    assert len(BLOCKS) == len(TITLES) == 10


@pytest.mark.parametrize("number", range(len(BLOCKS)), ids=[f"example{t}" for t in TITLES])
def test_example_runs_and_reaches_its_figure(number, tmp_path, cli_env):
    proc = subprocess.run([sys.executable, "-c", BLOCKS[number]], cwd=tmp_path, env=cli_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (BLOCKS[number][:200], proc.stderr[-3000:])
    assert proc.stdout.strip(), "each example prints its figure"
