"""The lesson notebooks run top to bottom in a real Jupyter kernel (nbclient + ipykernel).

The kernel runs this interpreter (a kernelspec written for ``sys.executable``), so it tests
this checkout. On the English notebook: a progress display appears, every plot call gives
exactly one image, and nothing is written to stderr (no warnings).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory, monkeypatch_module):
    """A kernelspec that starts this very interpreter (not whatever `python3` means elsewhere)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "fittorch-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fittorch under test", "language": "python",
        "env": {"OMP_NUM_THREADS": "1"}}))
    monkeypatch_module.setenv("JUPYTER_PATH", str(root))
    return "fittorch-test"


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def execute(name: str, kernel_name: str, cwd: Path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:  # run from a clean state, not the saved outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=600,
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs_of(nb, needle: str) -> list:
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert cells, needle
    return [o for c in cells for o in c.outputs]


@pytest.mark.slow
def test_english_notebook_runs_and_shows_what_a_learner_needs(kernel_name, tmp_path):
    nb = execute("training-loop.ipynb", kernel_name, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # The kernel ran this interpreter's fittorch, not another installation.
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    # No warnings and nothing else on stderr, in any cell.
    stderr = [o.text for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == [], stderr
    # fittorch's fit: a progress widget, and the live view (table + curves) updated in place.
    fit = outputs_of(nb, "history = trainer.fit(")
    assert any(WIDGET in o.get("data", {}) for o in fit), fit
    live = [o for o in fit if "fittorch-live" in o.get("data", {}).get("text/html", "")]
    assert len(live) == 1 and "epoch 30 of 30" in live[0]["data"]["text/html"]
    assert "data:image/png;base64," in live[0]["data"]["text/html"]
    # One image per plot call: history.plot() as the last line, and the lesson's plt.show().
    for needle in ("history.plot()", "plt.show()"):
        images = [o for o in outputs_of(nb, needle) if "image/png" in o.get("data", {})]
        assert len(images) == 1, (needle, [list(o.get("data", {})) for o in outputs_of(nb, needle)])
    # _repr_html_: History, evaluate's result, the model summary and the doctor report are tables.
    for needle, text in (("history\n", "History: 30 epochs"), ("trainer.evaluate((X_test, y_test))", "Evaluation"),
                         ("ft.model_summary(", "Model: SimpleNN"), ("ft.doctor(", "fittorch doctor: FAILED")):
        cells = [c for c in code if c.source.endswith(needle.strip()) or needle in c.source + "\n"]
        html = [o["data"]["text/html"] for c in cells for o in c.outputs if "text/html" in o.get("data", {})]
        assert any(text in h for h in html), (needle, html)
    assert "identical accuracy: True" in "".join(o.get("text", "") for o in outputs_of(nb, "ft.load(path)"))


@pytest.mark.slow
def test_korean_notebook_runs(kernel_name, tmp_path):
    nb = execute("training-loop.ko.ipynb", kernel_name, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    assert any("보장합니다" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert [o for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"] == []


def test_notebooks_are_built_from_one_source():
    """The committed notebooks match examples/notebooks/build.py (code cells identical in both languages)."""
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import build
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for lang, path in build.PATHS.items():
        saved = nbformat.read(path, as_version=4)
        fresh = build.build(lang)
        assert [c.source for c in saved.cells] == [c.source for c in fresh.cells], path.name
    en, ko = (nbformat.read(p, as_version=4) for p in build.PATHS.values())
    assert len(en.cells) == len(ko.cells)
    assert sum("### With fittorch" in c.source for c in en.cells) == 9  # every lesson section, both ways
    assert sum("### fittorch로" in c.source for c in ko.cells) == 9


@pytest.mark.slow
def test_progress_bar_without_ipywidgets_falls_back_to_text_without_a_warning(kernel_name, tmp_path):
    """The bug: ft.ProgressBar(bar=True) in Jupyter gave a TqdmWarning about IProgress."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "import sys\nsys.modules['ipywidgets'] = None  # as if ipywidgets were not installed",
        "import numpy as np\nimport fittorch as ft\n"
        "X = np.random.default_rng(0).normal(size=(64, 4)).astype('float32')\ny = (X[:, 0] > 0).astype('int64')\n"
        "t = ft.Trainer(ft.MLP(4, [8], 2), progress=False, callbacks=[ft.ProgressBar(bar=True, live=False)])\n"
        "h = t.fit((X, y), epochs=3, batch_size=16)",
        "h.plot()  # pyplot never imported in this kernel: still one image",
    )]
    nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outs = nb.cells[1].outputs
    assert all(o.output_type != "error" for o in outs)
    assert [o for o in outs if o.output_type == "stream" and o.name == "stderr"] == []
    text = "".join(o.get("text", "") for o in outs if o.output_type == "stream")
    assert "Training" in text and "3/3" in text and "Warning" not in text
    assert not any(WIDGET in o.get("data", {}) for o in outs)
    plot = nb.cells[2].outputs
    assert [o.output_type for o in plot if "image/png" in o.get("data", {})] == ["display_data"], plot
