"""The default leaderboard fit in a fresh process: wall time, compile time and diagnostics.

Usage (from the root of the worktree to measure, data beside it)::

    SLOTH_JAX_CACHE=0 PYTHONPATH=$PWD SLOTH_DATA_DIR=../shared/data \\
        python benchmarks/sampler_compare.py LABEL [--no-compile-ahead]

Prints one JSON line. JAX's persistent compilation cache stays off (code that has
``sloth.configure`` gets ``compilation_cache=False``; older code reads ``SLOTH_JAX_CACHE=0``),
so the fit pays every compile, as the first fit of a fresh machine does.
``--no-compile-ahead`` turns off the compile-ahead threads of code that has them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time

START = time.perf_counter()

import jax  # noqa: E402

import sloth  # noqa: E402

if importlib.util.find_spec("sloth.config") is not None:
    from sloth.config import configure

    configure(host_devices=max(4, os.cpu_count() or 1), compilation_cache=False)

from sloth import SlothModel, load_leaderboard  # noqa: E402
from sloth.checks.diagnostics import sampler_summary  # noqa: E402

COMPILE = {"backend_s": 0.0, "programs": 0, "trace_s": 0.0, "lower_s": 0.0}


def _listen(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILE["backend_s"] += duration
        COMPILE["programs"] += 1
    elif event == "/jax/core/compile/jaxpr_trace_duration":
        COMPILE["trace_s"] += duration
    elif event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
        COMPILE["lower_s"] += duration


def main(label: str, compile_ahead: bool) -> dict:
    jax.monitoring.register_event_duration_secs_listener(_listen)
    if not compile_ahead:
        estimator = importlib.import_module("sloth.estimator")
        if hasattr(estimator, "compile_ahead"):
            estimator.compile_ahead = lambda *args, **kwargs: None
    table = load_leaderboard()
    start = time.perf_counter()
    model = SlothModel(n_skills=3, extra_covariates=["instruct"], progress_bar=False).fit(table)
    end = time.perf_counter()
    s = sampler_summary(model.idata_)
    return {
        "label": label, "sloth": os.path.dirname(sloth.__file__), "fit_s": end - start,
        "process_s": end - START, "timings": model.timings_,
        "mean_leapfrog": s["mean_leapfrog_steps"], "rhat_max": s["rhat_max"],
        "worst": s["worst_rhat_variable"], "ess_bulk_min": s["ess_bulk_min"],
        "lowest": s["lowest_ess_variable"], "divergences": s["divergences"],
        "ess_per_s_sampling": s["ess_bulk_min"] / model.timings_["sampling"],
        "ess_per_s_fit": s["ess_bulk_min"] / (end - start), "compile": COMPILE,
        "chain_method": model.idata_.attrs["chain_method"], "load": os.getloadavg(),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], "--no-compile-ahead" not in sys.argv)))
