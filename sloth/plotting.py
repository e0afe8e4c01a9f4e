"""Plots of skills, forecasts and sampler traces.

Every function draws on ``ax`` (a new figure's axes when ``None``) and returns it:

- :func:`plot_loadings`: heatmap of rotated loadings with their intervals;
- :func:`plot_skill_levels`: a skill's level over (N, D) with iso-FLOP lines and each
  skill's compute-optimal path;
- :func:`plot_forecast_fan`: forecast fan chart of scores against model size;
- :func:`plot_trace`: trace or rank plot of one scalar through arviz-plots;
- :func:`plot_pit_histogram`: histogram of PIT values of held-out scores against the band
  of a uniform one (:func:`plot_pit_histograms`: one panel per method of an evaluation);
- :func:`plot_ppc`: posterior or prior predictive distribution of each benchmark's scores
  against the observed ones, and :func:`plot_ppc_pit`: the PIT ECDF of the observed scores
  under the posterior predictive, one panel per benchmark, through arviz-plots.

Loss-law plots live in :mod:`sloth.laws.plotting`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from sloth.data.mapping import FLOPS_PER_PARAM_TOKEN, training_compute

if TYPE_CHECKING:
    from sloth.skills.analysis import SkillAnalysis

__all__ = [
    "plot_forecast_fan",
    "plot_loadings",
    "plot_pit_histogram",
    "plot_pit_histograms",
    "plot_ppc",
    "plot_ppc_pit",
    "plot_skill_levels",
    "plot_trace",
]


def _axes(ax: Any, figsize: tuple[float, float] = (6, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


# ----------------------------------------------------------------------------- loadings


def plot_loadings(analysis: SkillAnalysis, *, level: float = 0.9, annotate: bool = True,
                  ax: Any = None):
    """Heatmap of rotated loadings (posterior means) with their intervals.

    Each cell shows the mean and the equal-tailed interval; cells whose interval contains
    zero are written in grey.

    Parameters
    ----------
    analysis : SkillAnalysis
        From :func:`sloth.skills.analysis.analyze_skills`.
    level : float
        Interval probability.
    annotate : bool
        Write the mean and interval in each cell.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    table = analysis.loadings_table(level)
    J, d = len(analysis.benchmarks), analysis.n_skills
    mean = table["mean"].to_numpy().reshape(J, d)
    lower = table["lower"].to_numpy().reshape(J, d)
    upper = table["upper"].to_numpy().reshape(J, d)
    ax = _axes(ax, (1.6 + 1.5 * d, 0.9 + 0.42 * J))
    vmax = float(np.max(np.abs(mean))) or 1.0
    image = ax.imshow(mean, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    plt.colorbar(image, ax=ax, label="loading (posterior mean)")
    if annotate:
        for j in range(J):
            for k in range(d):
                zero_inside = lower[j, k] <= 0 <= upper[j, k]
                strong = abs(mean[j, k]) > 0.6 * vmax
                colour = "0.55" if zero_inside else ("white" if strong else "black")
                ax.text(k, j, f"{mean[j, k]:.2f}\n[{lower[j, k]:.2f}, {upper[j, k]:.2f}]",
                        ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(d), analysis.names, rotation=20, ha="right")
    ax.set_yticks(range(J), analysis.benchmarks)
    ax.set_title(f"{analysis.method} loadings ({level:.0%} intervals)")
    return ax


# ----------------------------------------------------------------------------- levels


def plot_skill_levels(
    analysis: SkillAnalysis,
    skill: int | str = 0,
    *,
    family: str | None = None,
    extra: Mapping[str, float] | None = None,
    params_range: tuple[float, float] | None = None,
    tokens_range: tuple[float, float] | None = None,
    compute: Sequence[float] | None = None,
    level: float = 0.9,
    n: int = 60,
    show_models: bool = True,
    ax: Any = None,
):
    """Level curves of one skill over (N, D), with iso-FLOP lines and optimum paths.

    The filled contours are the posterior-mean skill of a typical family (or of
    ``family``); dashed grey lines are iso-FLOP budgets ``C = 6 N D``; coloured lines are
    each skill's compute-optimal path (posterior-median tokens per parameter, within the
    data's range of D/N; see :meth:`SkillAnalysis.compute_optimal`), the chosen skill's
    with a band of its ``level`` interval.

    Parameters
    ----------
    analysis : SkillAnalysis
    skill : int or str
        Index or name of the skill whose levels are drawn.
    family : str, optional
        A fitted family (default: typical family of the population).
    extra : mapping, optional
        Values of extra covariates (default: the analysis's, e.g. instruct=0).
    params_range, tokens_range : (float, float), optional
        Axis ranges (default: the fitted models' range, widened by 2x).
    compute : sequence of float, optional
        Iso-FLOP budgets to draw (default: the decades inside the plotted range).
    level : float
    n : int
        Grid size per axis.
    show_models : bool
        Mark the fitted models.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    k = analysis.skill_index(skill)
    params, tokens, levels = analysis.level_grid(params_range, tokens_range, n=n,
                                                 family=family, extra=extra)
    ax = _axes(ax, (6.5, 4.8))
    contour = ax.contourf(params, tokens, levels[..., k], levels=14, cmap="viridis")
    plt.colorbar(contour, ax=ax, label=f"{analysis.names[k]} (SD across fitted models)")
    p_lo, p_hi, t_lo, t_hi = params[0], params[-1], tokens[0], tokens[-1]
    if compute is None:
        c_min, c_max = training_compute(p_lo, t_lo), training_compute(p_hi, t_hi)
        compute = 10.0 ** np.arange(np.ceil(np.log10(c_min)), np.floor(np.log10(c_max)) + 1)
        compute = compute[:: max(1, len(compute) // 6)]
    grid_n = np.geomspace(p_lo, p_hi, 100)
    for c in compute:
        d_line = c / (FLOPS_PER_PARAM_TOKEN * grid_n)
        inside = (d_line >= t_lo) & (d_line <= t_hi)
        if inside.any():
            ax.plot(grid_n[inside], d_line[inside], ls="--", lw=0.8, color="0.85")
            i = int(np.nonzero(inside)[0][len(np.nonzero(inside)[0]) // 2])
            ax.annotate(f"{c:.0e}", (grid_n[i], d_line[i]), fontsize=7, color="0.9")
    budgets = np.geomspace(training_compute(p_lo, t_lo), training_compute(p_hi, t_hi), 80)
    table = analysis.compute_optimal(budgets, level=level)
    for m, name in enumerate(analysis.names):
        rows = table[table["skill"] == name]
        colour = f"C{(m + 1) % 10}"
        lw = 2.4 if m == k else 1.2
        ratio = float(rows["D_per_N"].iloc[0])
        ax.plot(rows["N_opt"], rows["D_opt"], color=colour, lw=lw,
                label=f"optimum: {name} (D/N ~ {ratio:.3g})")
        if m == k:
            for bound in ("lower", "upper"):
                ax.plot(rows[f"N_opt_{bound}"], rows[f"D_opt_{bound}"], color=colour, lw=0.8,
                        ls=":")
    if show_models:
        ax.scatter(analysis.params, analysis.tokens, s=6, color="white", edgecolor="black",
                   linewidth=0.3, label="fitted models", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(p_lo, p_hi)
    ax.set_ylim(t_lo, t_hi)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("training tokens D")
    who = f"family {family}" if family else "typical family"
    ax.set_title(f"{analysis.names[k]} over (N, D), {who}")
    ax.legend(fontsize=7, loc="lower left")
    return ax


# ----------------------------------------------------------------------------- forecasts


def _sizes(frame: pd.DataFrame, params: Any, what: str) -> np.ndarray:
    """Model sizes of the rows of ``frame`` (shape (len(frame),))."""
    if params is None:
        if "params" not in frame.columns:
            raise ValueError(
                f"{what} has no 'params' column: pass params= as a mapping (or Series) from "
                f"model name to parameter count, or add a params column"
            )
        values = frame["params"]
    elif isinstance(params, str):
        values = frame[params]
    else:
        mapping = params if isinstance(params, Mapping | pd.Series) else None
        if mapping is None:
            raise TypeError("params= must be a column name, a mapping or a pandas Series "
                            "from model name to parameter count")
        missing = sorted(set(frame["model"]) - set(mapping.keys()))
        if missing:
            raise ValueError(f"params= lacks the sizes of models {missing[:10]} of {what}")
        values = frame["model"].map(dict(mapping))
    sizes = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(sizes) & (sizes > 0)):
        raise ValueError(f"the sizes of {what} must be positive parameter counts")
    return sizes


def plot_forecast_fan(
    predictions: pd.DataFrame,
    params: str | Mapping[str, float] | pd.Series | None = None,
    *,
    benchmarks: Sequence[str] | None = None,
    observed: pd.DataFrame | None = None,
    ax: Any = None,
):
    """Fan chart of forecast scores against model size, one band per benchmark.

    Parameters
    ----------
    predictions : DataFrame
        Output of :func:`sloth.forecast.forecast` or :meth:`SlothModel.predict`: columns
        ``model, benchmark, mean, median, q05, q95`` (extra quantile columns ``q25, q75``
        are drawn as an inner band when present).
    params : str, mapping or Series, optional
        Model sizes: a column of ``predictions``, or a map from model name to parameter
        count (default: the ``params`` column).
    benchmarks : sequence of str, optional
        Benchmarks to draw (default: all in ``predictions``).
    observed : DataFrame, optional
        Observed scores to overlay: a wide table (``model``, ``params``, one column per
        benchmark) or a tidy one (``model, benchmark, score``, sizes from ``params``).

    Returns
    -------
    matplotlib Axes
    """
    needed = ["model", "benchmark", "median", "q05", "q95"]
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions lack columns {missing}; pass the frame returned by "
            f"sloth.forecast.forecast or SlothModel.predict (columns {needed})"
        )
    frame = predictions.copy()
    frame["_N"] = _sizes(frame, params, "predictions")
    names = list(dict.fromkeys(frame["benchmark"])) if benchmarks is None else list(benchmarks)
    unknown = sorted(set(names) - set(frame["benchmark"]))
    if unknown:
        raise ValueError(f"benchmarks {unknown} are not in predictions; it has "
                         f"{sorted(set(frame['benchmark']))}")
    ax = _axes(ax)
    for i, name in enumerate(names):
        rows = frame[frame["benchmark"] == name].sort_values("_N")
        colour = f"C{i % 10}"
        ax.fill_between(rows["_N"], rows["q05"], rows["q95"], color=colour, alpha=0.18, lw=0)
        if {"q25", "q75"} <= set(rows.columns):
            ax.fill_between(rows["_N"], rows["q25"], rows["q75"], color=colour, alpha=0.3, lw=0)
        ax.plot(rows["_N"], rows["median"], color=colour, lw=1.5, label=name)
        if observed is not None:
            if name in observed.columns:  # wide table
                sizes = _sizes(observed, params if isinstance(params, str) else None,
                               "observed")
                ax.scatter(sizes, observed[name], color=colour, s=18, edgecolor="black",
                           linewidth=0.5, zorder=3)
            elif {"benchmark", "score"} <= set(observed.columns):
                part = observed[observed["benchmark"] == name]
                if len(part):
                    ax.scatter(_sizes(part, params, "observed"), part["score"], color=colour,
                               s=18, edgecolor="black", linewidth=0.5, zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("score")
    ax.set_title("forecast: median and 90% band")
    ax.legend(fontsize=7, ncol=2)
    return ax


# ----------------------------------------------------------------------------- traces


def _posterior_tree(source: Any) -> xr.DataTree:
    if hasattr(source, "to_datatree"):  # SkillAnalysis: rotated posterior
        return source.to_datatree()
    tree = getattr(source, "idata_", source)
    if not isinstance(tree, xr.DataTree) or "posterior" not in tree.children:
        raise TypeError(
            f"plot_trace needs a fitted SlothModel, a DataTree with a posterior group or a "
            f"SkillAnalysis; got {type(source).__name__}"
        )
    return tree


def plot_trace(
    source: Any,
    var_name: str,
    coords: Mapping[str, Any] | None = None,
    *,
    kind: str = "trace",
    ax: Any = None,
):
    """Trace (value per draw) or rank (fractional-rank ECDF difference) plot of one
    scalar, one line per chain, drawn by arviz-plots.

    Parameters
    ----------
    source : SlothModel, DataTree or SkillAnalysis
        A SkillAnalysis gives the rotated, aligned posterior (``loading``,
        ``skill_slope``, ``family_efficiency``, ``skill_corr``).
    var_name : str
        Posterior variable, e.g. ``"loading"``.
    coords : mapping, optional
        Selection making the variable a scalar per draw, e.g.
        ``{"benchmark": "GSM8K", "skill": "skill_1"}``.
    kind : {"trace", "rank"}

    Returns
    -------
    matplotlib Axes
    """
    import arviz_plots as azp
    from arviz_plots import PlotCollection

    if kind not in ("trace", "rank"):
        raise ValueError(f"kind={kind!r}: choose 'trace' or 'rank'")
    tree = _posterior_tree(source)
    post = tree["posterior"].to_dataset()
    if var_name not in post:
        raise ValueError(f"{var_name!r} is not a posterior variable; choose one of "
                         f"{sorted(post.data_vars)}")
    coords = dict(coords or {})
    try:
        da = post[var_name].sel(coords)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"coords {coords} do not select from {var_name!r} (dims "
                         f"{dict(post[var_name].sizes)}): {exc}") from None
    other = [d for d in da.dims if d not in ("chain", "draw")]
    if other:
        choices = {d: [str(v) for v in post[var_name][d].to_numpy()[:4]] for d in other}
        raise ValueError(
            f"{var_name!r} still has dims {other} after selecting {coords}; pass coords "
            f"picking one value of each, e.g. {choices}"
        )
    ds = post[[var_name]].sel(coords)
    ax = _axes(ax)
    fig = ax.get_figure()

    def obj(value: Any) -> xr.DataArray:
        holder = np.empty((), dtype=object)
        holder[()] = value
        return xr.DataArray(holder)

    viz = xr.DataTree(
        xr.Dataset({"figure": obj(fig)}),
        children={
            "plot": xr.DataTree(xr.Dataset({var_name: obj(ax)})),
            "row_index": xr.DataTree(xr.Dataset({var_name: xr.DataArray(0)})),
            "col_index": xr.DataTree(xr.Dataset({var_name: xr.DataArray(0)})),
        },
    )
    pc = PlotCollection(ds, viz, backend="matplotlib",
                        aes={"color": ["chain"], "overlay": ["chain"]})
    plot = azp.plot_trace if kind == "trace" else azp.plot_rank
    plot(tree, var_names=[var_name], coords=coords or None, plot_collection=pc,
         backend="matplotlib")
    label = ", ".join(f"{v}" for v in coords.values())
    ax.set_title(f"{var_name}[{label}]" if label else var_name)
    return ax


# ----------------------------------------------------------------------------- calibration


def plot_pit_histogram(pit: np.ndarray | pd.Series, *, bins: int = 10, band: float = 0.99,
                       title: str | None = None, ax: Any = None):
    """Histogram of PIT values with the uniform reference and its sampling band.

    A calibrated forecaster's PIT values are uniform: the bars scatter around 1 within the
    shaded band (the pointwise binomial band of a uniform histogram with as many values,
    :func:`sloth.evaluation.harness.pit_histogram`). A U shape means intervals too narrow
    (overconfident), a hump in the middle too wide, a slope a biased forecast.

    Parameters
    ----------
    pit : array-like, shape (n,)
        PIT values in [0, 1] (:func:`sloth.evaluation.harness.pit_from_draws`); NaN values
        are left out.
    bins : int
        Number of equal bins.
    band : float
        Probability of the band.
    title : str, optional
        First line of the title (the second gives n and the bins outside the band).

    Returns
    -------
    matplotlib Axes
    """
    from sloth.evaluation.harness import pit_histogram

    hist = pit_histogram(pit, bins=bins, level=band)
    ax = _axes(ax)
    ax.stairs(hist.density, hist.edges, fill=True, color="C0", alpha=0.6, label="PIT")
    ax.axhspan(hist.lower, hist.upper, color="0.35", alpha=0.25, lw=0, zorder=3,
               label=f"{band:.0%} band of a uniform histogram")
    ax.axhline(1.0, color="black", lw=1, ls="--", zorder=4, label="uniform")
    ax.set_xlim(0.0, 1.0)  # the y axis autoscales from 0 (shared by the panels of a figure)
    ax.set_xlabel("PIT (share of predictive draws below the observed score)", fontsize=8)
    ax.set_ylabel("density")
    detail = f"n = {hist.n}; {hist.outside} of {bins} bins outside the band"
    ax.set_title(f"{title}\n{detail}" if title else detail, fontsize=9)
    return ax


def plot_pit_histograms(predictions: pd.DataFrame, *, methods: Sequence[str] | None = None,
                        bins: int = 10, band: float = 0.99, figure: Any = None) -> np.ndarray:
    """PIT histograms of an evaluation's held-out scores, one panel per method.

    Parameters
    ----------
    predictions : DataFrame
        Output of :func:`sloth.evaluation.harness.evaluate` (or the file of
        ``sloth evaluate --out``): columns ``method`` and ``pit``.
    methods : sequence of str, optional
        Methods to draw, in order (default: every method of ``predictions``).
    bins, band
        As in :func:`plot_pit_histogram`.
    figure : matplotlib Figure, optional
        Figure to lay the panels out on (up to two per row; its size is set to fit them).
        Default: a new pyplot figure.

    Returns
    -------
    ndarray of matplotlib Axes, shape (n_methods,)
    """
    missing = [c for c in ("method", "pit") if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions lack columns {missing}: PIT values are written by "
            f"sloth.evaluation.harness.evaluate (and sloth evaluate --out); a file written "
            f"before they were has none. Fix: run the evaluation again"
        )
    names = list(dict.fromkeys(predictions["method"])) if methods is None else list(methods)
    unknown = sorted(set(names) - set(predictions["method"]))
    if unknown or not names:
        raise ValueError(f"methods {unknown or names} are not in predictions; it has "
                         f"{sorted(set(predictions['method']))}")
    ncols = min(len(names), 2)
    nrows = -(-len(names) // ncols)
    if figure is None:
        import matplotlib.pyplot as plt

        figure = plt.figure(layout="constrained")
    figure.set_size_inches(4.6 * ncols, 3.2 * nrows)
    grid = figure.subplots(nrows, ncols, squeeze=False, sharey=True).reshape(-1)
    for ax, name in zip(grid, names, strict=False):
        plot_pit_histogram(predictions.loc[predictions["method"] == name, "pit"], bins=bins,
                           band=band, title=name, ax=ax)
    for ax in grid[len(names):]:
        ax.set_visible(False)
    grid[0].legend(fontsize=7, loc="best")
    return grid[: len(names)]


# ----------------------------------------------------------------------------- predictive checks


def _by_benchmark(tree: xr.DataTree, group: str, benchmarks: Sequence[str] | None
                  ) -> tuple[xr.DataTree, list[str]]:
    """The predictive ``group`` and ``observed_data`` as arviz-plots draws them per panel:
    one variable per benchmark over its observed models only (``observed_data`` holds
    ``nan`` where a model has no score, which arviz-plots' PIT would count as a score)."""
    if group not in tree.children or "observed_data" not in tree.children:
        raise ValueError(
            f"the tree needs {group!r} and 'observed_data' groups; it has "
            f"{sorted(tree.children)}. Fix: sloth.checks.predictive.with_predictive(fit) "
            f"adds the predictive groups")
    observed = tree["observed_data"]["scores"].transpose("model", "benchmark")
    draws = tree[group]["scores"].transpose("chain", "draw", "model", "benchmark")
    names = [str(b) for b in observed["benchmark"].to_numpy()]
    chosen = names if benchmarks is None else list(benchmarks)
    unknown = sorted(set(chosen) - set(names))
    if unknown or not chosen:
        raise ValueError(f"benchmarks {unknown or chosen} are not in the fit; it has {names}")
    pred, obs = {}, {}
    for name in chosen:
        column = observed.sel(benchmark=name)
        seen = column["model"].to_numpy()[~np.isnan(column.to_numpy())]
        dim = f"model ({name})"
        obs[name] = column.sel(model=seen).drop_vars("benchmark").rename(model=dim)
        pred[name] = draws.sel(benchmark=name, model=seen).drop_vars("benchmark").rename(
            model=dim)
    layout = xr.DataTree.from_dict({group: xr.Dataset(pred),
                                    "observed_data": xr.Dataset(obs)})
    return layout, chosen


def _grid_figure(n_panels: int, col_wrap: int) -> dict[str, Any]:
    """``figure_kwargs`` of arviz-plots for ``n_panels`` panels, ``col_wrap`` per row:
    a size that fits them and a constrained layout (titles clear of the tick labels)."""
    cols = min(n_panels, col_wrap)
    rows = -(-n_panels // cols)
    return {"figsize": (3.2 * cols, 2.5 * rows), "layout": "constrained"}


def _panels(pc: Any, names: Sequence[str], xlim: tuple[float, float] | None = None
            ) -> np.ndarray:
    """The Axes of a PlotCollection's panels, one per benchmark (in ``names``' order),
    limited to ``xlim`` when given."""
    plots = pc.viz["plot"]
    axes = np.array([plots[name].item() for name in names], dtype=object)
    if xlim is not None:
        for ax in axes:
            ax.set_xlim(*xlim)
    return axes


def plot_ppc(tree: xr.DataTree, *, group: str = "posterior_predictive", kind: str = "kde",
             benchmarks: Sequence[str] | None = None, num_samples: int = 50,
             col_wrap: int = 4) -> np.ndarray:
    """Predictive distribution of each benchmark's scores against the observed ones.

    Each panel draws, through arviz-plots' ``plot_ppc_dist``, the distribution across models
    of ``num_samples`` replicated data sets of one benchmark (thin lines) and of its observed
    scores (thick line), on scores from -0.05 to 1.05 (the model's unbounded noise sends a
    few replicates further). For the prior predictive the panel spans -0.25 to 1.25 and also
    marks the benchmark's guessing floor and a perfect score (dotted lines): mass beyond
    them is implausible.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's tree with the predictive group (:func:`sloth.checks.predictive.with_predictive`).
    group : {"posterior_predictive", "prior_predictive"}
    kind : {"kde", "hist", "ecdf"}
        How arviz-plots draws each distribution.
    benchmarks : sequence of str, optional
        Benchmarks to draw, in order (default: all of the fit's).
    num_samples : int, default 50
        Replicated data sets drawn per panel.
    col_wrap : int, default 4
        Panels per row.

    Returns
    -------
    ndarray of matplotlib Axes, shape (n_benchmarks,)
        ``axes[0].get_figure()`` is the figure.
    """
    import arviz_plots as azp

    if group not in ("posterior_predictive", "prior_predictive"):
        raise ValueError(f"group={group!r}: choose 'posterior_predictive' or "
                         f"'prior_predictive'")
    layout, names = _by_benchmark(tree, group, benchmarks)
    visuals = {"observed_dist": {}} if group == "prior_predictive" else None
    pc = azp.plot_ppc_dist(layout, group=group, kind=kind, num_samples=num_samples,
                           backend="matplotlib", col_wrap=col_wrap, visuals=visuals,
                           figure_kwargs=_grid_figure(len(names), col_wrap))
    prior = group == "prior_predictive"
    axes = _panels(pc, names, (-0.25, 1.25) if prior else (-0.05, 1.05))
    if prior:
        floors = tree["constant_data"]["floors"]
        for ax, name in zip(axes, names, strict=True):
            for x in (float(floors.sel(benchmark=name)), 1.0):
                ax.axvline(x, color="0.3", ls=":", lw=1)
    return axes


def plot_ppc_pit(tree: xr.DataTree, *, benchmarks: Sequence[str] | None = None,
                 coverage: bool = False, col_wrap: int = 4) -> np.ndarray:
    """PIT Delta-ECDF of the observed scores under the posterior predictive, one panel per
    benchmark, with the p-value of arviz-plots' uniformity test (``plot_ppc_pit``, its
    ``pot_c`` method: the observations that drive a deviation are marked).

    A flat curve near zero is consistent with calibration; in-sample, a curve below zero
    then above it (PIT values piled in the middle) is the mild over-coverage of data used
    twice, while the opposite S marks a benchmark whose scores are more spread than the
    model says.

    Parameters
    ----------
    tree : xarray.DataTree
        With ``posterior_predictive`` and ``observed_data``.
    benchmarks : sequence of str, optional
    coverage : bool, default False
        Draw the coverage of the central intervals instead of the PIT.
    col_wrap : int, default 4

    Returns
    -------
    ndarray of matplotlib Axes, shape (n_benchmarks,)
    """
    import arviz_plots as azp

    layout, names = _by_benchmark(tree, "posterior_predictive", benchmarks)
    pc = azp.plot_ppc_pit(layout, coverage=coverage, backend="matplotlib", col_wrap=col_wrap,
                          figure_kwargs=_grid_figure(len(names), col_wrap))
    return _panels(pc, names)
