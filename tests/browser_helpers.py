"""Headless chromium for the HTML pages (report.html, the runs comparison): render, probe, screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# After load, writes "<tables>;<id>:<complete>:<w>x<h>;..." (the number of tables, then each image) into the DOM.
PROBE = ("<script>window.addEventListener('load', function () {"
         "var r = Array.from(document.images).map(function (i) {"
         "return i.id + ':' + i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight; });"
         "var t = document.querySelectorAll('table').length;"
         "var d = document.createElement('div'); d.id = 'render-probe'; d.textContent = [t].concat(r).join(';');"
         "document.body.appendChild(d); });</script>")


def flags(tmp_path, size: str) -> list[str]:
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            f"--window-size={size}", "--virtual-time-budget=3000"]


def console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


def probe(page: str, tmp_path, size: str) -> tuple[int, dict[str, tuple[bool, int, int]]]:
    """Render ``page`` with the probe: (number of tables, {image id: (complete, width, height)})."""
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(flags(tmp_path, size) + ["--dump-dom", probed.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == [], console_errors(dom.stderr)
    match = re.search(r'<div id="render-probe">([^<]*)</div>', dom.stdout)
    assert match, dom.stdout[-2000:]
    tables, *images = match.group(1).split(";")
    out = {}
    for spec in images:
        name, complete, size_ = spec.split(":")
        w, h = map(int, size_.split("x"))
        out[name] = (complete == "true", w, h)
    return int(tables), out


def screenshot(path, tmp_path, size: str):
    """A PNG screenshot of the page at ``path``; returns the PIL image (RGB)."""
    from PIL import Image

    shot = tmp_path / "screenshot.png"
    run = subprocess.run(flags(tmp_path, size) + [f"--screenshot={shot}", path.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert console_errors(run.stderr) == []
    return Image.open(shot).convert("RGB")
