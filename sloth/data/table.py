"""The validated table of evaluations that every model in sloth consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Canonical column names of a wide evaluations table.
MODEL, FAMILY, PARAMS, TOKENS = "model", "family", "params", "tokens"


@dataclass(frozen=True)
class ScoreTable:
    """Benchmark scores of ``n`` models from ``F`` families on ``J`` benchmarks.

    Parameters
    ----------
    models : tuple of str, length n
        Unique model names.
    family : tuple of str, length n
        Family of each model.
    params : ndarray, shape (n,)
        Parameter count of each model (absolute count, e.g. ``7e9``).
    tokens : ndarray, shape (n,)
        Training tokens of each model (absolute count, e.g. ``2e12``).
    benchmarks : tuple of str, length J
        Benchmark names.
    floors : ndarray, shape (J,)
        Guessing floor of each benchmark (expected score of random guessing).
    scores : ndarray, shape (n, J)
        Scores in [0, 1]; ``nan`` where a model was not evaluated on a benchmark.
    extra_covariates : dict of str to ndarray of shape (n,)
        Optional further covariates of the skill model (e.g. an instruct flag).
    skipped : DataFrame
        Models left out of the table, with columns ``model`` and ``reason``.
    """

    models: tuple[str, ...]
    family: tuple[str, ...]
    params: np.ndarray
    tokens: np.ndarray
    benchmarks: tuple[str, ...]
    floors: np.ndarray
    scores: np.ndarray
    extra_covariates: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"model": [], "reason": []})
    )

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_benchmarks(self) -> int:
        return len(self.benchmarks)

    @property
    def families(self) -> tuple[str, ...]:
        """Unique families in order of first appearance, length F."""
        return tuple(dict.fromkeys(self.family))

    @property
    def family_index(self) -> np.ndarray:
        """Index into :attr:`families` of each model, shape (n,)."""
        lookup = {f: i for i, f in enumerate(self.families)}
        return np.array([lookup[f] for f in self.family], dtype=np.int32)

    @property
    def observed(self) -> np.ndarray:
        """Boolean mask of observed cells, shape (n, J)."""
        return ~np.isnan(self.scores)

    @property
    def n_scores(self) -> int:
        return int(self.observed.sum())

    def to_frame(self) -> pd.DataFrame:
        """Wide DataFrame: model, family, params, tokens, extra covariates, benchmark scores."""
        df = pd.DataFrame(
            {MODEL: list(self.models), FAMILY: list(self.family), PARAMS: self.params,
             TOKENS: self.tokens}
        )
        for name, values in self.extra_covariates.items():
            df[name] = values
        for j, b in enumerate(self.benchmarks):
            df[b] = self.scores[:, j]
        return df

    def to_long(self) -> pd.DataFrame:
        """Tidy DataFrame of observed cells: model, family, benchmark, score."""
        rows, cols = np.nonzero(self.observed)
        return pd.DataFrame(
            {
                MODEL: np.asarray(self.models)[rows],
                FAMILY: np.asarray(self.family)[rows],
                "benchmark": np.asarray(self.benchmarks)[cols],
                "score": self.scores[rows, cols],
            }
        )

    def subset(self, models: np.ndarray | list[int] | None = None,
               benchmarks: list[str] | None = None) -> ScoreTable:
        """A table restricted to some rows (indices or boolean mask) and/or benchmarks."""
        idx = np.arange(self.n_models) if models is None else np.asarray(models)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        cols = (list(range(self.n_benchmarks)) if benchmarks is None
                else [self.benchmarks.index(b) for b in benchmarks])
        return ScoreTable(
            models=tuple(self.models[i] for i in idx),
            family=tuple(self.family[i] for i in idx),
            params=self.params[idx],
            tokens=self.tokens[idx],
            benchmarks=tuple(self.benchmarks[c] for c in cols),
            floors=self.floors[cols],
            scores=self.scores[np.ix_(idx, cols)],
            extra_covariates={k: v[idx] for k, v in self.extra_covariates.items()},
            skipped=self.skipped,
        )

    def concat(self, other: ScoreTable) -> ScoreTable:
        """This table's rows followed by ``other``'s.

        Parameters
        ----------
        other : ScoreTable
            The same benchmarks (in order), floors and extra covariates; no model of this
            table.

        Returns
        -------
        ScoreTable
            ``n + n_other`` models; the ``skipped`` record of this table.

        Raises
        ------
        ValueError
            If the benchmarks, floors or covariates differ, or a model is in both.
        """
        if (other.benchmarks != self.benchmarks
                or not np.allclose(other.floors, self.floors)
                or sorted(other.extra_covariates) != sorted(self.extra_covariates)):
            raise ValueError(
                f"cannot concatenate tables of benchmarks {list(other.benchmarks)}, covariates "
                f"{sorted(other.extra_covariates)} to one of {list(self.benchmarks)}, "
                f"{sorted(self.extra_covariates)}: give both the same benchmarks (in order), "
                "floors and extra covariates (e.g. with subset(benchmarks=...))")
        shared = sorted(set(self.models) & set(other.models))
        if shared:
            raise ValueError(f"models {shared[:5]} are in both tables: drop them from one "
                             "(e.g. with subset(models=...)) before concatenating")
        return ScoreTable(
            models=self.models + other.models, family=self.family + other.family,
            params=np.concatenate([self.params, other.params]),
            tokens=np.concatenate([self.tokens, other.tokens]),
            benchmarks=self.benchmarks, floors=self.floors,
            scores=np.concatenate([self.scores, other.scores]),
            extra_covariates={k: np.concatenate([v, other.extra_covariates[k]])
                              for k, v in self.extra_covariates.items()},
            skipped=self.skipped,
        )
