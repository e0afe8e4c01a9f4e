"""Covariates of the skill model and the arrays a fit consumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sloth.data.table import ScoreTable
from sloth.exceptions import DataValidationError

#: Names of the three scaling covariates, in order.
SCALING_COVARIATES = ("log_params", "log_tokens", "log_params_x_log_tokens")


@dataclass(frozen=True)
class CovariateScaler:
    """Standardizes ``(log10 N, log10 D, log10 N * log10 D)`` and extra covariates.

    The interaction is formed from the *centred* logs, ``(log10 N - m_N)(log10 D - m_D)``:
    it spans the same functions of ``(log N, log D)`` as the raw product together with the
    main effects (the difference is linear in them), and is far less collinear with them,
    which the sampler appreciates.

    Parameters
    ----------
    names : tuple of str, length P
        Covariate names (the three scaling covariates, then extras).
    log_center : ndarray, shape (2,)
        Means of log10 N and log10 D used to centre the interaction.
    mean, std : ndarray, shape (P,)
        Standardization of each covariate.
    """

    names: tuple[str, ...]
    log_center: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(
        cls, params: np.ndarray, tokens: np.ndarray, extra: Mapping[str, np.ndarray] | None = None
    ) -> CovariateScaler:
        """Learn the centring and scaling from training models (arrays of shape (n,))."""
        extra = dict(extra or {})
        log_center = np.array([np.mean(np.log10(params)), np.mean(np.log10(tokens))])
        scaler = cls(
            names=SCALING_COVARIATES + tuple(extra),
            log_center=log_center,
            mean=np.zeros(3 + len(extra)),
            std=np.ones(3 + len(extra)),
        )
        raw = scaler._raw(params, tokens, extra)
        std = raw.std(axis=0)
        std[std == 0] = 1.0
        return cls(scaler.names, log_center, raw.mean(axis=0), std)

    def _raw(
        self, params: np.ndarray, tokens: np.ndarray, extra: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        ln = np.log10(np.asarray(params, dtype=float)) - self.log_center[0]
        ld = np.log10(np.asarray(tokens, dtype=float)) - self.log_center[1]
        columns = [ln + self.log_center[0], ld + self.log_center[1], ln * ld]
        for name in self.names[3:]:
            if name not in extra:
                raise DataValidationError(
                    f"covariate {name!r} is missing: the model was fitted with extra "
                    f"covariates {list(self.names[3:])}; add a column {name!r}"
                )
            columns.append(np.asarray(extra[name], dtype=float))
        return np.column_stack(columns)

    def transform(
        self, params: np.ndarray, tokens: np.ndarray, extra: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Standardized covariates, shape (n, P)."""
        return (self._raw(params, tokens, dict(extra or {})) - self.mean) / self.std

    def to_attrs(self) -> dict[str, list]:
        """JSON-friendly representation (for netCDF attributes)."""
        return {
            "names": list(self.names),
            "log_center": self.log_center.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Sequence]) -> CovariateScaler:
        return cls(
            names=tuple(attrs["names"]),
            log_center=np.asarray(attrs["log_center"], dtype=float),
            mean=np.asarray(attrs["mean"], dtype=float),
            std=np.asarray(attrs["std"], dtype=float),
        )


@dataclass(frozen=True)
class FitArrays:
    """Arrays of a fit, derived from a :class:`ScoreTable`.

    Shapes: covariates (n, P), family_index (n,), obs_model and obs_benchmark and scores (m,),
    floors and inv_items (J,).
    """

    covariates: np.ndarray
    family_index: np.ndarray
    obs_model: np.ndarray
    obs_benchmark: np.ndarray
    scores: np.ndarray
    floors: np.ndarray
    inv_items: np.ndarray


def build_arrays(
    table: ScoreTable, scaler: CovariateScaler, inv_items: np.ndarray
) -> FitArrays:
    """Flatten the observed cells of ``table`` and standardize its covariates."""
    rows, cols = np.nonzero(table.observed)
    return FitArrays(
        covariates=scaler.transform(table.params, table.tokens, table.extra_covariates),
        family_index=table.family_index,
        obs_model=rows.astype(np.int32),
        obs_benchmark=cols.astype(np.int32),
        scores=table.scores[rows, cols],
        floors=np.asarray(table.floors, dtype=float),
        inv_items=np.asarray(inv_items, dtype=float),
    )
