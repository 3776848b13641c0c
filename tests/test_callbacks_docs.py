"""The Python snippets in docs/callbacks.md and docs/metrics.md run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("doc", ["callbacks.md", "metrics.md"])
def test_snippets_run(doc, tmp_path, cli_env):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / doc).read_text(), flags=re.S)
    assert blocks
    # One interpreter for all of a page's blocks: the imports are paid once.
    script = "\n\n".join(blocks)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if doc == "callbacks.md":
        assert "['confusion_matrix.png', 'curves.png', 'report.html']" in proc.stdout
        assert (tmp_path / "runs" / "reference" / "metrics.csv").exists()
