"""`fittorch runs --compare`: one self-contained page, checked in a real headless browser."""

from __future__ import annotations

import base64
import re

import browser_helpers as browser
import pytest

from fittorch.cli import main
from fittorch.compare import compare_runs, config_diff, load_runs
from fittorch.config import save_config, validate
from fittorch.errors import ConfigError
from fittorch.experiment import build_experiment
from fittorch.runs import execute

CHROMIUM = browser.CHROMIUM


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for name, lr, epochs in (("adam-fast", 0.02, 4), ("adam-slow", 0.002, 3)):
        cfg = validate({"name": name, "data": {"source": "sklearn:iris", "test_split": 0.2},
                        "train": {"epochs": epochs, "batch_size": 16}, "optimizer": {"lr": lr}})
        exp = build_experiment(cfg, root / name, quiet=True)
        (root / name).mkdir()
        save_config(cfg, root / name / "config.yaml")
        assert execute(exp, root / name, quiet=True) == 0
        dirs.append(root / name)
    return dirs


def test_compare_page_has_curves_config_diff_and_figures(two_runs, tmp_path, capsys):
    assert main(["runs", "--compare", *map(str, two_runs), "--output", str(tmp_path / "cmp.html")]) == 0
    assert f"Wrote {tmp_path / 'cmp.html'}" in capsys.readouterr().out
    page = (tmp_path / "cmp.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page) and "<script" not in page
    (png,) = re.findall(r"<img id='curves' [^>]*src='data:image/png;base64,([^']+)'", page)
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    # the config keys that differ, and only those
    assert [row[0] for row in config_diff(load_runs(two_runs))] == ["name", "optimizer.lr", "train.epochs"]
    assert "<td>optimizer.lr</td><td>0.02</td><td>0.002</td>" in page
    assert "<td>data.source</td>" not in page
    # final and best side by side, and the test figures
    assert "<th>adam-fast final</th><th>adam-fast best</th><th>adam-slow final</th>" in page
    assert "<td>val_loss</td>" in page and "<td>test accuracy</td>" in page
    assert compare_runs(two_runs).name == "compare.html"  # the Python API, default path
    root = two_runs[0].parent  # bare names are looked up under RUNS_DIR
    assert main(["runs", str(root), "--compare", "adam-fast", "adam-slow", "--output", str(tmp_path / "b.html")]) == 0
    assert (tmp_path / "b.html").read_text().count("<td>optimizer.lr</td>") == 1


@pytest.mark.parametrize("loss, task", [(None, "multiclass"), ("BCE_with_logits", "binary")])
def test_a_0_2_run_naming_the_task_classification_compares_under_todays_name(two_runs, tmp_path, loss, task):
    """0.2 wrote `task: classification`; compared with a new run it is not a difference in itself."""
    import shutil

    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(two_runs[0], old)
    shutil.copytree(two_runs[0], new)
    for run, name in ((old, "classification"), (new, task)):
        text = (run / "config.yaml").read_text().replace("task: null", f"task: {name}")
        if loss:
            text = text.replace("loss: null", f"loss: {loss}")
        (run / "config.yaml").write_text(text)
    assert f"task: {task}" in (new / "config.yaml").read_text()
    assert config_diff(load_runs([old, new])) == []
    (new / "config.yaml").write_text((new / "config.yaml").read_text().replace(f"task: {task}", "task: regression"))
    assert ("task", task, "regression") in config_diff(load_runs([old, new]))  # a real change still shows


def test_compare_needs_two_run_directories(two_runs, tmp_path):
    with pytest.raises(ConfigError, match="at least two"):
        compare_runs(two_runs[:1])
    with pytest.raises(ConfigError, match="not a fittorch run directory"):
        compare_runs([two_runs[0], tmp_path])
    assert main(["runs", "--compare", str(two_runs[0]), str(tmp_path)]) == 2


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)")
def test_compare_page_renders_in_headless_chromium(two_runs, tmp_path):
    path = compare_runs(two_runs, tmp_path / "cmp.html")
    tables, images = browser.probe(path.read_text(), tmp_path, "1200,1800")
    assert tables == 3  # runs, figures, config differences
    complete, w, h = images["curves"]
    assert list(images) == ["curves"] and complete and w > 600 and h > 300
    img = browser.screenshot(path, tmp_path, "1200,1800")
    assert img.size == (1200, 1800)
    assert len(img.resize((60, 90)).getcolors(maxcolors=100_000)) > 50  # text and curves, not a blank page


def test_compare_and_runs_on_a_died_run_import_no_torch(two_runs, tmp_path, cli_env):
    """`fittorch runs` stays torch-free, also when it reads a died run's checkpoints or draws a comparison."""
    import json
    import subprocess
    import sys

    from fittorch.runs import read_run_json, write_run_json

    died = two_runs[0].parent / "adam-fast"
    info = read_run_json(died)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_run_json(died, {**info, "status": "running", "pid": dead.pid, "epochs": None})
    try:
        code = (
            "import contextlib, io, json, sys\nfrom fittorch.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    assert main(['runs', {str(died.parent)!r}, '--json']) == 0\n"
            f"    assert main(['runs', '--compare', {str(two_runs[0])!r}, {str(two_runs[1])!r}, "
            f"'--output', {str(tmp_path / 'c.html')!r}]) == 0\n"
            "row = [json.loads(ln) for ln in out.getvalue().splitlines() if ln.startswith('{')][0]\n"
            "print(json.dumps({'torch': 'torch' in sys.modules, 'row': row}))\n")
        proc = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.splitlines()[-1])
        assert result["torch"] is False
        assert result["row"]["status"] == "died" and result["row"]["epochs"] == 4  # from the checkpoints
    finally:
        write_run_json(died, info)
