"""The fit pipeline: SlothModel.fit runs it, and fits that share a ProgramCache trace and
compile their programs once (an evaluation sweep relies on it)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sloth import SlothModel
from sloth.inference import ProgramCache, SamplerSettings, fit_posterior
from sloth.model import ModelStructure, default_priors
from sloth.model.design import build_arrays
from sloth.model.simulate import simulate_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: Programs that hold the model's potential (the costly ones to trace and compile).
BIG = {"potential", "postprocess", "advance", "init"}
SETTINGS = dict(num_chains=2, num_warmup=30, num_samples=20, max_tree_depth=4,
                progress_bar=False)


class Traced:
    """Names of the functions JAX traces for compiling while the context is open."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.listening = False
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **kwargs) -> None:
        if self.listening and event == "/jax/core/compile/jaxpr_trace_duration":
            self.names.append(str(kwargs.get("fun_name")))

    def __enter__(self) -> Traced:
        self.names.clear()
        self.listening = True
        return self

    def __exit__(self, *exc) -> None:
        self.listening = False


def test_fits_sharing_a_cache_compile_once():
    first, _ = simulate_leaderboard(n_families=19, n_skills=2, n_benchmarks=6, seed=8)
    second, _ = simulate_leaderboard(n_families=21, n_skills=2, n_benchmarks=6, seed=9)
    cache = ProgramCache()
    traced = Traced()
    with traced:
        SlothModel(2, **SETTINGS).fit(first, programs=cache)
    assert BIG & set(traced.names), traced.names  # the listener sees the programs traced
    with traced:
        model = SlothModel(2, **SETTINGS).fit(second, programs=cache)
    assert not BIG & set(traced.names), traced.names
    assert 20 <= model.idata_["posterior"].sizes["draw"] <= 80  # drawn on until mixed
    assert len(cache) == 2  # the exploratory and the anchored structure


def test_fit_posterior_with_given_anchors():
    table, truth = simulate_leaderboard(n_families=12, n_skills=2, n_benchmarks=6, seed=2)
    arrays = build_arrays(table, truth.scaler, truth.inv_items)
    structure = ModelStructure(
        n_families=len(table.families), n_benchmarks=6, n_covariates=arrays.covariates.shape[1],
        n_skills=2, anchors=None, priors=default_priors(),
    )
    messages = []
    fit = fit_posterior(arrays, structure, anchors=(4, 1),
                        sampler=SamplerSettings(**{**SETTINGS, "pilot": 10}),
                        benchmarks=table.benchmarks, log=messages.append)
    assert fit.anchors == (4, 1) and fit.structure.anchors == (4, 1)
    loading = fit.samples["loading"]
    assert loading.shape == (2, 20, 6, 2)
    np.testing.assert_array_equal(loading[:, :, 4], np.broadcast_to([1.0, 0.0], (2, 20, 2)))
    assert set(fit.sample_stats) >= {"diverging", "n_steps", "lp"}
    assert fit.timings["map"] > 0 and fit.timings["sampling"] > 0
    assert messages[0].startswith("exploratory MAP")
    assert f"['{table.benchmarks[4]}', '{table.benchmarks[1]}']" in messages[1]
    with pytest.raises(ValueError, match="exploratory"):
        fit_posterior(arrays, fit.structure)
