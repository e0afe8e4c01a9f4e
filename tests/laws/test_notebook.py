"""Execute notebooks/04_compute_optimal_skills.ipynb with small settings (SLOTH_FAST=1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CHINCHILLA_CSV, SHARED_DATA

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_compute_optimal_skills.ipynb"


def test_notebook_runs_and_draws(monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if not CHINCHILLA_CSV.is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    monkeypatch.setenv("SLOTH_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("SLOTH_FAST", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)   # the kernel draws inline
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
