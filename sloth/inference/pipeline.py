"""The fit pipeline that :meth:`sloth.SlothModel.fit` runs: exploratory MAP, anchors,
anchored MAP, NUTS."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sloth.inference.anchors import benchmark_information, choose_anchors, to_anchored
from sloth.inference.map import MapResult, find_map
from sloth.inference.nuts import run_nuts, sample_stats
from sloth.inference.programs import ProgramCache
from sloth.model import ModelStructure
from sloth.model.design import FitArrays

__all__ = ["PosteriorFit", "SamplerSettings", "fit_posterior"]


@dataclass(frozen=True)
class SamplerSettings:
    """Settings of the NUTS run of :func:`fit_posterior` (see
    :func:`sloth.inference.run_nuts`)."""

    num_chains: int = 4
    num_warmup: int = 500
    num_samples: int = 2000
    max_samples: int | None = None
    rhat_target: float = 1.01
    ess_per_chain_target: float = 100.0
    pilot: int = 150
    target_accept: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = False
    progress_bar: bool = True


@dataclass(frozen=True)
class PosteriorFit:
    """The outcome of :func:`fit_posterior`.

    Attributes
    ----------
    samples : dict of ndarray
        Constrained sites and deterministics, shape (chains, draws, ...).
    sample_stats : dict of ndarray
        ArviZ-named sampler statistics, shape (chains, draws) (see
        :func:`sloth.inference.sample_stats`).
    structure : ModelStructure
        The anchored structure that was sampled.
    anchors : tuple of int, length d
        Anchor benchmark (index) of each skill.
    map_fit : MapResult
        The anchored MAP, where every chain started.
    chain_method : str
        ``"parallel"`` or ``"vectorized"``.
    timings : dict of float
        Seconds: ``"map"`` (both MAP fits and the anchor choice) and ``"sampling"``.
    """

    samples: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    structure: ModelStructure
    anchors: tuple[int, ...]
    map_fit: MapResult
    chain_method: str
    timings: dict[str, float]


def fit_posterior(
    arrays: FitArrays,
    structure: ModelStructure,
    *,
    anchors: Sequence[int] | None = None,
    centered: bool = True,
    map_starts: int = 2,
    sampler: SamplerSettings | None = None,
    seed: int = 0,
    programs: ProgramCache | None = None,
    benchmarks: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> PosteriorFit:
    """Sample the posterior of the skill model.

    1. An exploratory MAP of ``structure`` (no anchors), best of ``map_starts`` starts.
    2. Anchors: ``anchors`` if given, else chosen from the exploratory loadings weighted by
       each benchmark's information (:func:`sloth.inference.choose_anchors`).
    3. The anchored MAP, started from the exploratory solution rotated exactly into the
       anchored parametrization (:func:`sloth.inference.to_anchored`).
    4. NUTS whitened at that MAP (:func:`sloth.inference.run_nuts`), every chain starting
       next to it.

    Parameters
    ----------
    arrays : FitArrays
        The data: ``n`` models, ``m`` observed cells, ``J`` benchmarks.
    structure : ModelStructure
        The exploratory structure (``anchors=None``).
    anchors : sequence of int, optional
        Anchor benchmark of each skill (default: chosen from the data).
    centered : bool, default True
        Centred family efficiencies in the anchored model (else non-centred).
    map_starts : int, default 2
        Random starts of the exploratory MAP.
    sampler : SamplerSettings, optional
    seed : int, default 0
        Seed of the MAP starts and of NUTS.
    programs : ProgramCache, optional
        Compiled programs to use and keep (an evaluation sweep passes one cache to every
        fit); default: a cache for this fit only.
    benchmarks : sequence of str, optional
        Benchmark names, for the messages only.
    log : callable, optional
        Called with a one-line message at the start of each stage.

    Returns
    -------
    PosteriorFit
    """
    if structure.anchors is not None:
        raise ValueError("fit_posterior expects the exploratory structure (anchors=None)")
    sampler = SamplerSettings() if sampler is None else sampler
    programs = ProgramCache() if programs is None else programs
    say = log if log is not None else (lambda message: None)
    start = time.perf_counter()
    say(f"exploratory MAP ({map_starts} starts)")
    explore = find_map(arrays, structure, seed=seed, num_starts=map_starts, programs=programs)
    if anchors is None:
        chosen = choose_anchors(explore.values["loading_free"],
                                benchmark_information(explore.values, arrays))
    else:
        chosen = tuple(int(a) for a in anchors)
    anchored = replace(structure, anchors=chosen, centered=centered)
    init = find_map(arrays, anchored, seed=seed, num_starts=1,
                    init_values=to_anchored(explore.values, chosen, structure),
                    programs=programs)
    map_seconds = time.perf_counter() - start
    names = list(chosen) if benchmarks is None else [benchmarks[a] for a in chosen]
    say(f"anchors {names}; NUTS {sampler.num_chains} chains x "
        f"({sampler.num_warmup} warm-up + {sampler.num_samples} draws"
        + ("" if sampler.max_samples is None else f", up to {sampler.max_samples} until mixed")
        + ")")
    result = run_nuts(
        arrays, anchored, init.values, num_chains=sampler.num_chains,
        num_warmup=sampler.num_warmup, num_samples=sampler.num_samples,
        max_samples=sampler.max_samples, rhat_target=sampler.rhat_target,
        ess_per_chain_target=sampler.ess_per_chain_target, pilot=sampler.pilot,
        target_accept=sampler.target_accept, dense_mass=sampler.dense_mass,
        max_tree_depth=int(sampler.max_tree_depth), seed=seed,
        progress_bar=sampler.progress_bar, programs=programs,
    )
    return PosteriorFit(
        samples=result.samples, sample_stats=sample_stats(result.extra), structure=anchored,
        anchors=chosen, map_fit=init, chain_method=result.chain_method,
        timings={"map": map_seconds, "sampling": result.seconds},
    )
