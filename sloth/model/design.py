"""Covariates of the skill model, the arrays a fit consumes, and how far a model lies outside
the fitted data.

:class:`CovariateScaler` states the covariate design once: ``(log10 N, log10 D, their
centred product)`` and extra covariates, standardized. :class:`DesignRange` measures a
forecast's distance from the fitted models in that design (see its docstring for the figures
and the thresholds of :data:`RANGE_FOLD_LIMIT`), which predictions and forecasts report and
warn about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sloth.data.mapping import training_compute
from sloth.data.table import ScoreTable
from sloth.exceptions import DataValidationError

#: Names of the three scaling covariates, in order.
SCALING_COVARIATES = ("log_params", "log_tokens", "log_params_x_log_tokens")

#: A model whose parameters, tokens or compute lie more than this factor outside the fitted
#: models' range is flagged as extrapolating (see :class:`DesignRange`).
RANGE_FOLD_LIMIT = 3.0

#: Columns of the extrapolation figures (:meth:`DesignRange.figures`), in order.
EXTRAPOLATION_COLUMNS = ("params_ratio", "tokens_ratio", "compute_ratio",
                         "covariate_distance", "extrapolating")


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


def range_ratio(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """The factor by which values lie outside ``[low, high]``.

    Parameters
    ----------
    values : array-like, shape (n,)
        Positive values.
    low, high : float
        The range (positive, ``low <= high``).

    Returns
    -------
    ndarray, shape (n,)
        ``value / high`` above the range (> 1), ``value / low`` below it (< 1), exactly 1
        inside it.
    """
    values = np.asarray(values, dtype=float)
    return np.where(values > high, values / high, np.where(values < low, values / low, 1.0))


@dataclass(frozen=True)
class DesignRange:
    """Where a fit's models lie, against which predictions are placed.

    Figures of a model at ``(N, D)`` (:meth:`figures`):

    ``params_ratio``, ``tokens_ratio``, ``compute_ratio``
        The factor by which ``N``, ``D`` and ``C = 6 N D`` lie outside the fitted models'
        range (:func:`range_ratio`): ``6.0`` is six times the fit's largest, ``0.2`` a fifth
        of its smallest, ``1`` inside the range.
    ``covariate_distance``
        Mahalanobis distance of the scaling covariates ``x = (log10 N, log10 D, centred
        product)`` (:class:`CovariateScaler`) from the fitted models' mean, in their
        covariance: ``sqrt((x - m)' S^-1 (x - m))``. It is the hat value in other units
        (``h = 1/n + distance^2 / (n - 1)`` for a regression on ``x`` with an intercept),
        and it sees combinations of ``N`` and ``D`` that the fit never saw even where each
        lies within its range (a small model on very many tokens). The standardization and
        the centring of the product are affine maps of ``x``, which leave it unchanged.
        Extra covariates (e.g. the instruct flag) are left out: the question is the range
        of the growth terms. Directions in which the fitted models do not vary carry no
        distance (pseudo-inverse); the ratios still see them.
    ``extrapolating``
        Whether the model lies beyond the fitted data: a ratio more than
        :data:`RANGE_FOLD_LIMIT` (3) outside the range (``> 3`` or ``< 1/3``), or a
        covariate distance above the largest of the fitted models (:attr:`max_distance`),
        the "hidden extrapolation" rule of regression (a point whose hat value exceeds every
        fitted point's lies outside the data's ellipsoid hull; Montgomery, Peck and Vining,
        *Introduction to Linear Regression Analysis*, section 3.8).

    Forecasts there extend the fitted growth terms (the slopes of ``log N``, ``log D`` and
    their product, and the links' ceilings) past the data, so their accuracy and calibration
    are not those measured within it.

    Parameters
    ----------
    params, tokens, compute : tuple of float
        ``(smallest, largest)`` of the fitted models.
    scaler : CovariateScaler
        The scaling covariates' design, fitted to the fitted models.
    center : ndarray, shape (3,)
        Mean of the fitted models' scaling covariates.
    precision : ndarray, shape (3, 3)
        Pseudo-inverse of their covariance.
    max_distance : float
        The largest covariate distance among the fitted models.
    """

    params: tuple[float, float]
    tokens: tuple[float, float]
    compute: tuple[float, float]
    scaler: CovariateScaler
    center: np.ndarray
    precision: np.ndarray
    max_distance: float

    @classmethod
    def fit(cls, params: np.ndarray, tokens: np.ndarray) -> DesignRange:
        """The range of fitted models.

        Parameters
        ----------
        params, tokens : array-like, shape (n,)
            Parameter and training-token counts of the fitted models (absolute, positive).

        Returns
        -------
        DesignRange

        Raises
        ------
        ValueError
            ``params`` and ``tokens`` are empty or differ in length.
        """
        params = np.asarray(params, dtype=float)
        tokens = np.asarray(tokens, dtype=float)
        if params.ndim != 1 or params.shape != tokens.shape or not len(params):
            raise ValueError(
                f"params and tokens must be non-empty arrays of one length, got shapes "
                f"{params.shape} and {tokens.shape}")
        compute = training_compute(params, tokens)
        scaler = CovariateScaler.fit(params, tokens)
        x = scaler.transform(params, tokens)
        center = x.mean(axis=0)
        covariance = np.atleast_2d(np.cov(x, rowvar=False)) if len(x) > 1 else np.zeros((3, 3))
        precision = np.linalg.pinv(covariance, hermitian=True)
        fitted = cls((params.min(), params.max()), (tokens.min(), tokens.max()),
                     (compute.min(), compute.max()), scaler, center, precision, 0.0)
        return replace(fitted, max_distance=float(fitted.distance(params, tokens).max()))

    def distance(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Covariate distances (n,) of models from the fitted models (see the class
        docstring)."""
        x = self.scaler.transform(params, tokens) - self.center
        return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", x, self.precision, x), 0.0))

    def figures(self, params: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """The extrapolation figures of models.

        Parameters
        ----------
        params, tokens : array-like, shape (n,)
            Absolute counts.

        Returns
        -------
        dict of str to ndarray, shape (n,)
            One entry per :data:`EXTRAPOLATION_COLUMNS` (see the class docstring).
        """
        params = np.asarray(params, dtype=float)
        tokens = np.asarray(tokens, dtype=float)
        out = {
            "params_ratio": range_ratio(params, *self.params),
            "tokens_ratio": range_ratio(tokens, *self.tokens),
            "compute_ratio": range_ratio(training_compute(params, tokens), *self.compute),
            "covariate_distance": self.distance(params, tokens),
        }
        beyond = np.zeros(len(params), dtype=bool)
        for name in ("params_ratio", "tokens_ratio", "compute_ratio"):
            beyond |= (out[name] > RANGE_FOLD_LIMIT) | (out[name] < 1.0 / RANGE_FOLD_LIMIT)
        # fitted models themselves, up to rounding, are not beyond the largest distance
        beyond |= out["covariate_distance"] > self.max_distance * (1 + 1e-9) + 1e-12
        out["extrapolating"] = beyond
        return out

    def describe(self, names: Sequence[str], figures: Mapping[str, np.ndarray]) -> str | None:
        """A one-paragraph account of the models beyond the fitted data (``None`` if none).

        Parameters
        ----------
        names : sequence of str, length n
            Model names.
        figures : mapping
            :meth:`figures` of those models.
        """
        beyond = np.nonzero(figures["extrapolating"])[0]
        if not len(beyond):
            return None
        parts = []
        for i in beyond[:5]:
            what = []
            for key, label in (("params_ratio", "params"), ("tokens_ratio", "tokens"),
                               ("compute_ratio", "compute")):
                ratio = float(figures[key][i])
                if ratio > RANGE_FOLD_LIMIT:
                    what.append(f"{label} {ratio:.3g}x the fit's largest")
                elif ratio < 1.0 / RANGE_FOLD_LIMIT:
                    what.append(f"{label} {ratio:.3g}x the fit's smallest")
            what.append(f"covariate distance {float(figures['covariate_distance'][i]):.2f}")
            parts.append(f"{names[i]} ({', '.join(what)})")
        more = f" and {len(beyond) - 5} more" if len(beyond) > 5 else ""
        return (
            f"{len(beyond)} of {len(names)} models lie beyond the fitted data (params, tokens "
            f"or compute more than {RANGE_FOLD_LIMIT:g}x outside the fit's range "
            f"[{self.params[0]:.3g}, {self.params[1]:.3g}] params, "
            f"[{self.tokens[0]:.3g}, {self.tokens[1]:.3g}] tokens, "
            f"[{self.compute[0]:.3g}, {self.compute[1]:.3g}] FLOPs; or a covariate distance "
            f"above the fit's largest, {self.max_distance:.2f}): {'; '.join(parts)}{more}. "
            "Predictions there extend the fitted growth terms past the data, where their "
            "accuracy and interval coverage have not been measured; see the columns "
            f"{', '.join(EXTRAPOLATION_COLUMNS)}"
        )

    def to_attrs(self) -> dict[str, float | list[float]]:
        """JSON-friendly summary: the ranges, the largest covariate distance and the fold
        limit."""
        return {"params": list(map(float, self.params)), "tokens": list(map(float, self.tokens)),
                "compute": list(map(float, self.compute)), "max_distance": self.max_distance,
                "range_fold_limit": RANGE_FOLD_LIMIT}
