"""The docs stay true: code links point at the right lines, and snippets run.

After editing the linked code, run ``python tests/test_docs.py --fix`` to move each link to
the line that now holds its code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[`([^`]+)`\]\((?:\.\./)+(src/[^#)]+)#L(\d+)\)")
LINKED_DOCS = ["how-it-works.md", "ko/how-it-works.md"]


def _matches(code: str, line: str) -> bool:
    if re.fullmatch(r"[A-Za-z_][\w.]*", code):  # a bare name: its definition
        name = code.split(".")[-1]
        return re.search(rf"\b(def|class)\s+{name}\b", line) is not None
    return code in line


def _find_line(path: Path, code: str) -> int | None:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if _matches(code, line):
            return i
    return None


@pytest.mark.parametrize("doc", LINKED_DOCS)
def test_code_links_point_at_the_named_code(doc):
    links = LINK.findall((ROOT / "docs" / doc).read_text())
    assert len(links) >= 10
    for code, path, line in links:
        lines = (ROOT / path).read_text().splitlines()
        target = lines[int(line) - 1] if int(line) <= len(lines) else ""
        assert _matches(code, target), (
            f"{doc}: `{code}` -> {path}#L{line} is now {target!r}; "
            f"it is at line {_find_line(ROOT / path, code)}. Run: python tests/test_docs.py --fix")


@pytest.mark.parametrize("doc", LINKED_DOCS)
def test_python_snippets_run(doc, tmp_path, cli_env):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / doc).read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=cli_env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (block, proc.stderr)


def test_korean_docs_follow_the_english_ones():
    """The Korean how-it-works links the same code as the English one; both READMEs link each other."""
    en = LINK.findall((ROOT / "docs" / "how-it-works.md").read_text())
    ko = LINK.findall((ROOT / "docs" / "ko" / "how-it-works.md").read_text())
    assert [(c, p) for c, p, _ in ko] == [(c, p) for c, p, _ in en]
    assert "(README.ko.md)" in (ROOT / "README.md").read_text()
    assert "(docs/ko/how-it-works.md)" in (ROOT / "README.md").read_text()
    assert "(README.md)" in (ROOT / "README.ko.md").read_text()


@pytest.mark.parametrize("readme", ["README.ko.md"])
def test_readme_relative_links_exist(readme):
    text = (ROOT / readme).read_text()
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert targets
    for target in targets:
        assert (ROOT / target).exists(), f"{readme} links {target}, which does not exist"


@pytest.mark.parametrize("readme", ["README.ko.md"])
def test_readme_python_snippets_run(readme, tmp_path, cli_env):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / readme).read_text(), flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=cli_env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (block, proc.stderr)


def fix_links() -> None:
    for doc in LINKED_DOCS:
        p = ROOT / "docs" / doc

        def repl(m, up="../" * (doc.count("/") + 1)):
            code, path, line = m.groups()
            found = _find_line(ROOT / path, code)
            if found is None:
                print(f"{doc}: `{code}` not found in {path}", file=sys.stderr)
                return m.group(0)
            return f"[`{code}`]({up}{path}#L{found})"

        p.write_text(LINK.sub(repl, p.read_text()))


if __name__ == "__main__" and "--fix" in sys.argv:
    fix_links()
