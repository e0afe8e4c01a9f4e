"""Execute the tutorial notebooks 01-03 with small sampler settings (SLOTH_FAST=1).

Each notebook must run without an error output, draw at least one figure, and write a JSON
of its key numbers to the path in ``$SLOTH_NOTEBOOK_RESULTS``, which is checked here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _leaderboard_available() -> bool:
    from sloth.data.leaderboard import LEADERBOARD_FILE
    from sloth.data.sources import resolve_data_file
    from sloth.exceptions import SlothError

    try:
        resolve_data_file(LEADERBOARD_FILE, download=False)
    except (SlothError, OSError):
        return False
    return True


def _execute(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """Run ``notebooks/name`` in a fresh kernel; return its results JSON."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if not _leaderboard_available():
        pytest.skip("the leaderboard file is not available locally (set SLOTH_DATA_DIR)")
    results = tmp_path / "results.json"
    monkeypatch.setenv("SLOTH_FAST", "1")
    monkeypatch.setenv("SLOTH_NOTEBOOK_RESULTS", str(results))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()
    print(f"{name}: executed in {time.perf_counter() - start:.1f} s")
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= 1, f"{name} drew no figure"
    assert results.is_file(), f"{name} did not write {results}"
    return json.loads(results.read_text())


def test_fit_leaderboard_notebook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    out = _execute("01_fit_leaderboard.ipynb", monkeypatch, tmp_path)
    assert (out["n_models"], out["n_families"], out["n_benchmarks"]) == (175, 64, 12)
    assert len(out["anchors"]) == 3
    assert out["structural_passed"] and out["small_table_failed"]
    # the posterior-mean scores fit the leaderboard to a few points of accuracy, and the
    # 90% predictive intervals cover roughly 90% of the observed scores
    assert 0.005 < out["in_sample_mae"] < 0.06
    assert 0.75 < out["coverage90"] <= 1.0


def test_forecast_new_family_notebook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    out = _execute("02_forecast_new_family.ipynb", monkeypatch, tmp_path)
    by_k = out["by_observed"]
    assert set(by_k) == {"0", "1", "2"}
    # observing two of the family's models narrows the forecasts of the others ...
    assert by_k["2"]["90% width"] < by_k["0"]["90% width"]
    # ... and they stay accurate and roughly calibrated
    assert by_k["2"]["MAE"] < 0.06
    assert by_k["2"]["90% coverage"] > 0.6
    assert out["n_candidates"] == 50
    assert out["predictions_dims"]["benchmark"] == 12


def test_skill_loadings_notebook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    out = _execute("03_skill_loadings.ipynb", monkeypatch, tmp_path)
    names = out["names"]
    assert len(names) == 3 and len(set(names)) == 3
    # GSM8K and MATH measure the same (reasoning) skill; HellaSwag another one
    assert "MATH Lvl 5" in out["top_benchmarks"][out["reasoning_skill"]]
    assert out["reasoning_skill"] != out["knowledge_skill"]
    ratios = list(out["D_per_N"].values())
    assert all(1.0 <= r <= 1e5 for r in ratios)
    assert 0.0 <= out["p_reasoning_more_data_hungry"] <= 1.0
