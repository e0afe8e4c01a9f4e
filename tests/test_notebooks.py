"""Execute the tutorial notebooks 01-03 in their quick mode (``SLOTH_FAST=1``) and check what
they show.

The notebooks hold no test code. Each one runs top to bottom in a fresh kernel whose working
folder is a temporary one, so that the fit notebook 01 saves there (and 02 and 03 load) never
replaces a fit in ``notebooks/``. The tests then read what the notebooks display (the text
of cells tagged in their metadata, e.g. ``"tags": ["data"]``) and, after the last cell, the
values of a few names in the kernel's namespace (through the ``user_expressions`` of the
Jupyter messaging protocol).
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
#: The file notebook 01 saves in its quick mode (02 and 03 load it).
FAST_FIT_FILE = "leaderboard-fit-fast.nc"


def execute_notebook(path: Path, workdir: Path, expressions: Mapping[str, str] | None = None,
                     *, timeout: int = 600, env: Mapping[str, str] | None = None,
                     ) -> tuple[Any, dict[str, Any]]:
    """Run the notebook at ``path`` in a fresh kernel working in ``workdir``.

    ``env`` is added to the kernel's environment (it inherits this process's); the kernel
    imports the ``sloth`` of this checkout. After the last cell, each expression of
    ``expressions`` is evaluated in the kernel's namespace and its value returned through
    JSON (numbers, strings, lists, dicts).

    Returns
    -------
    nb : NotebookNode
        The executed notebook (cells with their outputs).
    values : dict
        ``{name: value}`` of ``expressions``.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.util import run_sync

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    queries = {name: f"__import__('json').dumps({code}, default=float)"
               for name, code in (expressions or {}).items()}

    async def run() -> dict[str, Any]:
        async with client.async_setup_kernel():
            for index, cell in enumerate(nb.cells):
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1)
            if not queries:
                return {}
            reply = await client.kc.execute("", silent=True, store_history=False,
                                            user_expressions=queries, reply=True,
                                            timeout=timeout)
            return reply["content"]["user_expressions"]

    kernel_env = {
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
        **(env or {}),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in kernel_env.items():
            patch.setenv(key, value)
        patch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
        start = time.perf_counter()
        replies = run_sync(run)()
        print(f"{path.name}: executed in {time.perf_counter() - start:.1f} s")
    values = {}
    for name, reply in replies.items():
        assert reply["status"] == "ok", f"{name}: {reply.get('ename')}: {reply.get('evalue')}"
        # text/plain is the repr of the JSON string
        values[name] = json.loads(ast.literal_eval(reply["data"]["text/plain"]))
    return nb, values


def cell_text(nb: Any, tag: str) -> str:
    """What the code cell tagged ``tag`` displayed: its streams and ``text/plain`` outputs."""
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged {tag!r}"
    parts = []
    for output in cells[0].outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def check_outputs(nb: Any, name: str) -> None:
    """No cell failed, at least one figure was drawn."""
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= 1, f"{name} drew no figure"


def _leaderboard_available() -> bool:
    from sloth.data.leaderboard import LEADERBOARD_FILE
    from sloth.data.sources import resolve_data_file
    from sloth.exceptions import SlothError

    try:
        resolve_data_file(LEADERBOARD_FILE, download=False)
    except (SlothError, OSError):
        return False
    return True


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notebooks' working folder, shared by 01, 02 and 03 (in this order)."""
    if not _leaderboard_available():
        pytest.skip("the leaderboard file is not available locally (set SLOTH_DATA_DIR)")
    return tmp_path_factory.mktemp("notebooks")


def run(name: str, workdir: Path, expressions: Mapping[str, str]) -> tuple[Any, dict]:
    nb, values = execute_notebook(NOTEBOOKS / name, workdir, expressions,
                                  env={"SLOTH_FAST": "1"})
    check_outputs(nb, name)
    return nb, values


@pytest.fixture(scope="module")
def fit_notebook(workdir: Path) -> tuple[Any, dict]:
    """Notebook 01, executed once: it saves the fit that 02 and 03 load."""
    return run("01_fit_leaderboard.ipynb", workdir, {
        "anchors": "model.anchors_",
        "structural_passed": "report.passed",
        "small_table_passed": "bad.passed",
        "fit_file": "str(FIT_FILE)",
        "ppc_coverage90": "checked.posterior['coverage90'].to_dict()",
        "prior_valid": "checked.prior['valid'].to_dict()",
        "predictive_groups": "sorted(checked.tree.children)",
    })


def test_fit_leaderboard_notebook(fit_notebook, workdir: Path):
    nb, values = fit_notebook
    data = re.search(r"(\d+) models, (\d+) families, (\d+) scores on (\d+) benchmarks",
                     cell_text(nb, "data"))
    assert data, cell_text(nb, "data")
    n_models, n_families, n_scores, n_benchmarks = map(int, data.groups())
    assert (n_models, n_families, n_benchmarks) == (175, 64, 12)
    assert len(values["anchors"]) == 3
    assert values["structural_passed"] and not values["small_table_passed"]
    assert "IdentifiabilityError" in cell_text(nb, "structure-small")
    # the posterior-mean scores fit the leaderboard to a few points of accuracy, and the
    # 90% predictive intervals cover roughly 90% of the observed scores
    mae = re.search(r"in-sample mean absolute error: ([\d.]+)", cell_text(nb, "summary"))
    assert mae and 0.005 < float(mae.group(1)) < 0.06, cell_text(nb, "summary")
    cover = re.search(r"cover ([\d.]+)% of the (\d+) observed", cell_text(nb, "coverage"))
    assert cover, cell_text(nb, "coverage")
    assert 75.0 < float(cover.group(1)) <= 100.0
    assert int(cover.group(2)) == n_scores
    # the predictive checks of the sampled model: the 90% intervals of the replicates cover
    # most observed scores of every benchmark; the prior predictive is mostly possible scores
    assert "Posterior predictive per benchmark" in cell_text(nb, "ppc")
    assert len(values["ppc_coverage90"]) == n_benchmarks
    assert all(0.6 <= c <= 1.0 for c in values["ppc_coverage90"].values())
    assert all(0.5 < v <= 1.0 for v in values["prior_valid"].values())
    assert {"posterior_predictive", "prior_predictive"} <= set(values["predictive_groups"])
    assert "in_observed_range" in cell_text(nb, "prior")
    # the fit is saved under the quick mode's own name, for notebooks 02 and 03
    assert values["fit_file"] == FAST_FIT_FILE
    assert (workdir / FAST_FIT_FILE).is_file()
    assert "loadings identical: True" in cell_text(nb, "save")


def test_forecast_new_family_notebook(fit_notebook, workdir: Path):
    nb, values = run("02_forecast_new_family.ipynb", workdir, {
        "loaded": "FIT_FILE.is_file()",
        "family": "FAMILY",
        "in_fit": "FAMILY in set(model.families_)",
        "errors": "errors.reset_index().to_dict(orient='records')",
        "n_candidates": "int(scores.sizes['model'])",
        "dims": "dict(scores.sizes)",
        "groups": "sorted(tree.children)",
    })
    assert "loaded" in cell_text(nb, "fit")   # 02 loads 01's fit rather than refitting
    assert not values["in_fit"]               # the family is new to the fit
    rows = {(r["observed models"], r["model"]): r for r in values["errors"]}
    # every model is forecast while not yet observed: 3 with none observed, 2 then 1
    assert sorted(k for k, _ in rows) == [0, 0, 0, 1, 1, 2]
    small, middle, largest = [m for k, m in rows if k == 0]
    assert [m for k, m in rows if k == 2] == [largest]
    # with nothing observed, the population's wide intervals hold the first model's scores
    assert rows[(0, small)]["90% coverage"] >= 0.75
    # observing the family's smaller models narrows the forecasts of its larger ones ...
    assert rows[(1, middle)]["90% width"] < rows[(0, middle)]["90% width"]
    assert rows[(1, largest)]["90% width"] < rows[(0, largest)]["90% width"]
    assert rows[(2, largest)]["90% width"] < rows[(0, largest)]["90% width"]
    # ... and, within the sizes of the fit, they are accurate and roughly calibrated
    assert rows[(1, middle)]["MAE"] < 0.06
    assert rows[(1, middle)]["90% coverage"] >= 0.75
    # beyond them (the largest model) it is an extrapolation, still within ten points
    assert rows[(2, largest)]["MAE"] < 0.1
    assert "real score" in cell_text(nb, "largest")
    assert values["n_candidates"] == 50
    assert values["dims"]["benchmark"] == 12
    assert {"predictions", "predictions_constant_data"} <= set(values["groups"])


def test_skill_loadings_notebook(fit_notebook, workdir: Path):
    nb, values = run("03_skill_loadings.ipynb", workdir, {
        "names": "analysis.names",
        "top_benchmarks": "analysis.top_benchmarks(3)",
        "reasoning": "reasoning",
        "knowledge": "knowledge",
        "D_per_N": "optimal.query('compute == 1e22')['D_per_N'].tolist()",
        "p_reasoning_more_data_hungry": "p_reasoning_data_hungrier",
    })
    assert "loaded" in cell_text(nb, "fit")
    names = values["names"]
    assert len(names) == 3 and len(set(names)) == 3
    # GSM8K and MATH measure the same (reasoning) skill; HellaSwag another one
    assert "MATH Lvl 5" in values["top_benchmarks"][values["reasoning"]]
    assert values["reasoning"] != values["knowledge"]
    assert all(1.0 <= r <= 1e5 for r in values["D_per_N"])
    assert 0.0 <= values["p_reasoning_more_data_hungry"] <= 1.0
    assert "P(" in cell_text(nb, "allocation")
