"""Execute notebooks/04_compute_optimal_skills.ipynb in its quick mode (``SLOTH_FAST=1``)
and check what it shows (see ``tests/test_notebooks.py`` for how outputs are read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_notebooks import NOTEBOOKS, cell_text, check_outputs, execute_notebook

from .conftest import CHINCHILLA_CSV, SHARED_DATA

NOTEBOOK = NOTEBOOKS / "04_compute_optimal_skills.ipynb"


def test_compute_optimal_notebook(tmp_path: Path):
    if not CHINCHILLA_CSV.is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    nb, values = execute_notebook(NOTEBOOK, tmp_path, {
        "estimate": "fit.param_table()['estimate'].to_dict()",
        "D_per_N_1e21": "float(alloc.query('compute == 1e21')['D_per_N'].iloc[0])",
        "out_of_sample": "{law: row['mean |rel err| %'] for law, row in rows.items()}",
        "skills": "table.set_index('skill')[['N_opt', 'true N_opt', 'D_per_N']]"
                  ".to_dict(orient='index')",
        "sweep_N_opt": "sweep['N_opt'].tolist()",
        "sweep_shift": "sweep['shift_vs_knowledge'].tolist()",
        "nuts_estimate": "post.param_table()['estimate'].to_dict()",
        "nuts_divergences": "post.diagnostics['divergences']",
    }, timeout=300, env={"SLOTH_DATA_DIR": str(SHARED_DATA), "SLOTH_FAST": "1"})
    check_outputs(nb, NOTEBOOK.name)
    # the robust fit of the Chinchilla runs agrees with the replication's estimates ...
    assert "chinchilla law" in cell_text(nb, "chinchilla")
    est = values["estimate"]
    assert 0.317 <= est["alpha"] <= 0.373 and 0.331 <= est["beta"] <= 0.415
    assert abs(est["E"] - 1.817) < 0.05
    # ... and gives Chinchilla's roughly 20 tokens per parameter
    assert 10.0 < values["D_per_N_1e21"] < 40.0
    # both laws predict the runs above the compute they were fitted on within a few percent
    assert set(values["out_of_sample"]) == {"chinchilla", "farseer"}
    assert all(err < 5.0 for err in values["out_of_sample"].values())
    # the per-skill fits recover each simulated skill's compute-optimal size ...
    skills = values["skills"]
    for row in skills.values():
        assert abs(np.log(row["N_opt"] / row["true N_opt"])) < np.log(1.3)
    assert skills["code"]["D_per_N"] > 3 * skills["knowledge"]["D_per_N"]
    # ... and the mixed validation loss moves N* from the knowledge skill's to the code's
    n_opt = np.array(values["sweep_N_opt"])
    assert np.all(np.diff(n_opt) < 0)
    assert abs(values["sweep_shift"][0]) < 1e-3 and values["sweep_shift"][-1] < -0.3
    # the NUTS fit lands near the simulated truth of the knowledge skill
    nuts = values["nuts_estimate"]
    assert abs(nuts["alpha"] - 0.30) < 0.03 and abs(nuts["beta"] - 0.38) < 0.03
    assert values["nuts_divergences"] == 0
