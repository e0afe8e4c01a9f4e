"""Loading, validation and provenance of benchmark evaluations.

- :func:`load_leaderboard` — the Sloth paper's Open LLM Leaderboard table.
- :func:`read_evaluations` — your own wide table of evaluations, validated.
- :func:`load_evaluations` — either of the above, chosen from the table's columns.
- :func:`load_obsscaling` — the Observational Scaling Laws evaluations, in the leaderboard's
  schema.
- :func:`load_corpus` / :func:`merge_sources` — several sources merged into one table, with
  provenance and a report of the scores two sources hold (:class:`Corpus`).
- :class:`BenchmarkRegistry` / :func:`register_benchmark` — guessing floors and item counts.
- :func:`resolve_data_file` — find or download a pinned public data file.
"""

from sloth.data.corpus import Corpus, DuplicateReport, load_corpus, merge_sources
from sloth.data.leaderboard import load_evaluations, load_leaderboard
from sloth.data.obsscaling import load_obsscaling, normalise_model_name
from sloth.data.registry import (
    BENCHMARK_GROUPS,
    BenchmarkInfo,
    BenchmarkRegistry,
    default_registry,
    register_benchmark,
    resolve_benchmarks,
)
from sloth.data.sources import DATA_FILES, DataFile, cache_dir, resolve_data_file, sha256_file
from sloth.data.table import ScoreTable
from sloth.data.validation import read_evaluations

__all__ = [
    "BENCHMARK_GROUPS",
    "DATA_FILES",
    "BenchmarkInfo",
    "BenchmarkRegistry",
    "Corpus",
    "DataFile",
    "DuplicateReport",
    "ScoreTable",
    "cache_dir",
    "default_registry",
    "load_corpus",
    "load_evaluations",
    "load_leaderboard",
    "load_obsscaling",
    "merge_sources",
    "normalise_model_name",
    "read_evaluations",
    "register_benchmark",
    "resolve_benchmarks",
    "resolve_data_file",
    "sha256_file",
    "simulate_leaderboard",
]


def __getattr__(name: str) -> object:
    # imported on first use: sloth.model.simulate needs sloth.model.design, which needs
    # sloth.data.table, so importing it here would make the two packages circular
    if name == "simulate_leaderboard":
        from sloth.model.simulate import simulate_leaderboard

        return simulate_leaderboard
    raise AttributeError(f"module 'sloth.data' has no attribute {name!r}")
