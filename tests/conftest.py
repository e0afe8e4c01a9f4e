"""Session-wide test settings.

- ``SLOTH_DATA_DIR`` points at ``../shared/data`` (beside the repository) when that folder
  exists and the variable is not already set; a relative setting is made absolute. Tests
  that need the reference data thus find it without a download, also in notebook kernels.
  ``tests/data/conftest.py`` unsets it for the data-loading tests, which manage it
  themselves.
- ``write_version_1`` (fixture): writes a posterior as sloth did before file-format versions,
  for the tests of the migration.
- Matplotlib draws with the non-interactive Agg backend (set in this process only, so
  notebook kernels started by the tests keep their own inline backend).
- :func:`sloth.configure` runs once, before any test computes with JAX, as the command line
  does: at least four CPU devices, so that NUTS chains run in parallel, and JAX's persistent
  compilation cache (``SLOTH_JAX_CACHE=0`` turns it off), so that a second run of the suite
  loads its compiled programs. Subprocesses inherit the device count through ``XLA_FLAGS``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

if SHARED_DATA.is_dir() and not os.environ.get("SLOTH_DATA_DIR"):
    os.environ["SLOTH_DATA_DIR"] = str(SHARED_DATA)
elif os.environ.get("SLOTH_DATA_DIR"):
    # absolute, so that notebook kernels and subprocesses started in other folders see the
    # same data (README's test command passes the relative ../shared/data)
    os.environ["SLOTH_DATA_DIR"] = str(Path(os.environ["SLOTH_DATA_DIR"]).resolve())

try:
    import matplotlib
except ImportError:  # pragma: no cover - matplotlib is a dependency
    pass
else:
    matplotlib.use("Agg", force=True)

from sloth.config import configure, default_host_devices  # noqa: E402

configure(host_devices=default_host_devices(),
          compilation_cache=os.environ.get("SLOTH_JAX_CACHE", "1") != "0")

def _write_version_1(tree, path, *, drop=()):
    """Write ``tree`` (a fit's posterior) as sloth wrote posteriors before format versions:
    no ``sloth_format``/``format_version``, one ``config`` attribute holding the constructor
    options of that time (no ``registry``, ``progress_bar`` nor ``max_samples``; ``drop``
    removes more, e.g. ``family_benchmark_effects`` for files before that option), derived
    variables left out,
    and the intercepts of a link with a ceiling those of the curve ``h r_k(eta)`` of that
    time (see :func:`sloth.model.ceiling_offset`)."""
    from sloth.posterior.datatree import without_derived

    old = without_derived(tree)
    post = old["posterior"].to_dataset()
    if "link_ceiling" in post:
        from sloth.model import ceiling_offset

        shape = post["link_shape"] if "link_shape" in post else None
        offset = ceiling_offset(post["link_ceiling"].to_numpy(),
                                None if shape is None else shape.to_numpy())
        old["posterior"] = post.assign(intercept=post["intercept"] - offset)
    attrs = dict(old.attrs)
    config = {**json.loads(attrs.pop("model_config")), **json.loads(attrs.pop("sampler_config"))}
    for key in ("registry", "progress_bar", "max_samples", *drop):
        del config[key]
    del attrs["sloth_format"], attrs["format_version"]
    attrs.pop("sloth_data_sha256", None)  # format 1 had no checksum
    attrs["config"] = json.dumps(config)
    old.attrs = attrs
    old.to_netcdf(path, engine="h5netcdf")


@pytest.fixture
def write_version_1():
    """The function ``write_version_1(tree, path, *, drop=())`` writing a format-1 file."""
    return _write_version_1


#: The family of :func:`comparison_fits`'s data left with a single score.
SINGLE_SCORE_FAMILY = "fam09"


@pytest.fixture(scope="session")
def cluster():
    """An executor on a Dask ``LocalCluster`` of two worker processes, one thread each
    (:meth:`sloth.executor.DaskExecutor.local`), for the tests of sweeps on Dask (started
    once, on first use; skipped without Dask)."""
    pytest.importorskip("distributed")
    from sloth.executor import DaskExecutor

    with DaskExecutor.local(2, threads_per_worker=1) as executor:
        yield executor


@pytest.fixture(scope="session")
def comparison_fits():
    """``(table, {"d1": model, "d2": model})``: a small simulated leaderboard with two true
    skills (10 families, 6 benchmarks; family ``fam09`` keeps one model with one score)
    fitted with one and with two skills (2 chains of 150 + 150), for the model-comparison
    tests of the library and of the command line."""
    from dataclasses import replace

    import numpy as np

    from sloth import SlothModel
    from sloth.model.simulate import simulate_leaderboard

    table, _ = simulate_leaderboard(n_families=10, n_benchmarks=6, n_skills=2, seed=3)
    family = np.asarray(table.family)
    single = np.nonzero(family == SINGLE_SCORE_FAMILY)[0]
    table = table.subset(models=[i for i in range(table.n_models) if i not in single[1:]])
    row = list(table.family).index(SINGLE_SCORE_FAMILY)
    scores = table.scores.copy()
    keep = np.nonzero(~np.isnan(scores[row]))[0][0]
    scores[row] = np.nan
    scores[row, keep] = table.scores[row, keep]
    table = replace(table, scores=scores)
    fits = {
        f"d{d}": SlothModel(d, num_chains=2, num_warmup=150, num_samples=150, seed=1,
                            progress_bar=False).fit(table)
        for d in (1, 2)
    }
    return table, fits
