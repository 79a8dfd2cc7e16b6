"""docs/tutorial.ipynb runs from top to bottom and finds the oscillation onset it describes."""

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
KERNEL = "sweeper-tests"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernelspec that runs this interpreter with this checkout on its path (JUPYTER_PATH)."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sweeper tests", "language": "python",
        "env": {"PYTHONPATH": str(ROOT), "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's store goes to a temporary folder
    return KERNEL


def tagged(nb, tag):
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, tag
    return cells[0]


def text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")


def images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.timeout(900)
def test_tutorial_notebook_runs_and_finds_the_onset(kernel):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails

    same = text(tagged(nb, "same-network"))
    assert "['excitatory', 'inhibitory']" in same
    difference = float(re.search(r"largest difference: (\S+) Hz", same).group(1))
    assert difference == 0.0  # the builder network is the tutorial's SONATA network

    assert "'done': 8" in text(tagged(nb, "run")) and "'failed': 0" in text(tagged(nb, "run"))

    onset = re.search(r"oscillation onset: delay = (\S+) s; last steady delay (\S+) s; (\S+) Hz",
                      text(tagged(nb, "onset")))
    assert onset, text(tagged(nb, "onset"))
    delay, steady, freq = map(float, onset.groups())
    assert 0.012 <= delay <= 0.018 and steady == pytest.approx(delay - 0.003)
    assert 5.0 < freq < 30.0  # a slow E-I loop oscillation, not noise

    assert images(tagged(nb, "plots")) == 2
    assert images(tagged(nb, "sweeper-plot")) == 1
