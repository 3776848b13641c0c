"""Shared by the export tests: trained run folders and a subprocess prelude that blocks imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def block_imports(*names: str) -> str:
    """Python source that makes ``import NAME`` (and its submodules) fail, as if it were not installed."""
    return (
        "import sys\n"
        "class _Blocked:\n"
        f"    names = {names!r}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in self.names:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Blocked())\n"
    )


def run_blocked(blocked: tuple, code: str, env: dict, cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", block_imports(*blocked) + code], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def fit_run(out: Path, config: str, *extra: str) -> Path:
    from fittorch.cli import main

    assert main(["fit", str(ROOT / "examples" / "configs" / config), "--quiet", "--out", str(out), *extra]) == 0
    return out / Path(config).stem
