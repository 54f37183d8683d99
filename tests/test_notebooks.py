"""The example notebooks in examples/ run from top to bottom with the installed package, and are
stored without outputs (the documentation build renders them with fresh outputs)."""

import json
from pathlib import Path

import pytest

from docs_support import require_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_the_three_examples_exist():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_known_mi", "02_tracking", "03_paper_analysis"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code"
    for cell in code:
        assert cell.get("outputs") == [] and cell.get("execution_count") is None, f"{path.name}: clear the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nbformat = require_module("nbformat", "executing the notebooks")
    nbclient = require_module("nbclient", "executing the notebooks")
    require_module("ipykernel", "executing the notebooks")
    require_module("torch", "the tracking notebook")
    notebook = nbformat.read(path, as_version=4)
    # The kernel is this interpreter ("python" in the kernel's command is replaced by sys.executable),
    # so the notebooks import the package under test; they run in a scratch directory.
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
