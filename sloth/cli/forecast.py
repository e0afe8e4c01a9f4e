"""``sloth forecast``: forecast models of new families from a saved fit."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloth.exceptions import DataNotFoundError, ExtrapolationWarning

if TYPE_CHECKING:
    pass

from sloth.cli.common import (
    HelpFormatter,
    add_force_option,
    captured_warnings,
    check_out,
    print_json,
    print_warning,
    write_csv,
)
from sloth.data.mapping import parse_unit


def add_forecast_parser(sub: Any) -> None:
    forecast = sub.add_parser(
        "forecast", formatter_class=HelpFormatter,
        help="forecast models of families that were not in the fit",
        description=(
            "Forecast benchmark scores of models of new families from a saved fit, without "
            "refitting. A family with observed models in --observed is conditioned on them; "
            "a family without is drawn from the fitted population of families. Every row "
            "says how far its model lies outside the fitted data (params_ratio, "
            "tokens_ratio, compute_ratio, covariate_distance, extrapolating), and a model "
            "beyond it (more than 3x outside the fit's range of params, tokens or compute, "
            "or farther from the fitted models than any of them) gets a warning line."
        ),
        epilog=(
            "examples:\n"
            "  sloth forecast --posterior fit.nc --models new.csv\n"
            "  sloth forecast --posterior fit.nc --models new.csv --observed first.csv --json"
        ),
    )
    forecast.add_argument("--posterior", metavar="FILE", default=None,
                          help="posterior file written by sloth fit (default: the cached "
                               "default fit of the leaderboard, fitted once when missing; "
                               "see sloth cache)")
    forecast.add_argument(
        "--models", metavar="CSV", required=True,
        help="models to forecast: columns model, family, params, tokens (absolute counts) "
             "and the fit's extra covariates (e.g. instruct)")
    forecast.add_argument(
        "--observed", metavar="CSV", default=None,
        help="already evaluated models of those families: the same columns plus one score "
             "column per benchmark of the fit (default: none, population forecast)")
    forecast.add_argument("--kind", choices=("score", "mean"), default="score",
                          help="posterior predictive of a score, or posterior of its mean")
    forecast.add_argument("--seed", metavar="INT", type=int, default=0, help="random seed")
    forecast.add_argument("--out", metavar="CSV", default=None,
                          help="also write the predictions to this CSV file")
    for name, example in (("params", "billions"), ("tokens", "trillions")):
        forecast.add_argument(
            f"--{name}-unit", metavar="UNIT", default=None,
            help=f"unit of the {name} column of --models and --observed, e.g. {example} "
                 f"(default: absolute counts)")
    add_force_option(forecast)
    forecast.add_argument("--json", action="store_true",
                          help="print the predictions as one JSON object on stdout")
    forecast.set_defaults(func=cmd_forecast)


def format_conditioning(records: list[dict]) -> str:
    """One line per family: how it was conditioned, with its Pareto k-hat and ESS."""
    lines = ["conditioning (Pareto k-hat of the weights across draws; <= 0.7 is reliable):"]
    for r in records:
        if r["method"] == "population":
            text = "no observed model: drawn from the fitted population of families"
        elif r["method"] == "refit":
            khat = "" if r["khat"] != r["khat"] else f"k-hat {r['khat']:.2f} too high, so "
            text = f"{khat}refitted with its {r['n_observed_models']} observed model(s)"
        else:
            text = (f"{r['n_observed_models']} observed model(s), {r['n_observed_scores']} "
                    f"scores: k-hat {r['khat']:.2f}, ESS {r['ess']:.0f} of {r['n_draws']} "
                    f"draws")
        lines.append(f"  {r['family']}: {text}")
    return "\n".join(lines)


def format_extrapolation(row: Any) -> str:
    """A model's extrapolation figures after its name: empty inside the fitted data, else
    ``"  beyond the fitted data: params 2.3x, tokens 1x, compute 6x, covariate distance
    5.97"`` (ratios outside the fit's range, see :class:`sloth.model.design.DesignRange`)."""
    if not row["extrapolating"]:
        return ""
    return (f"  beyond the fitted data: params {row['params_ratio']:.3g}x, tokens "
            f"{row['tokens_ratio']:.3g}x, compute {row['compute_ratio']:.3g}x, covariate "
            f"distance {row['covariate_distance']:.2f}")


def default_posterior(*, quiet: bool = False) -> Path:
    """The posterior of a plain ``sloth fit`` (the leaderboard, every default), from the user
    cache (:mod:`sloth.cache`); fitted once, with progress on stderr, when missing."""
    from sloth.cache import cached_fit_path
    from sloth.cli.fit import build_model, default_fit_args, load_table

    args = default_fit_args()
    table, source = load_table(args)
    model = build_model(args, table)

    def fit(path: Path) -> None:
        print(f"sloth: no cached default fit for this sloth and data; fitting {source} once "
              f"(about a minute; later forecasts reuse it)", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr):
            model.fit(table)
            model.save(path)

    path, _ = cached_fit_path(table, model.get_config(), fit,
                              description=f"sloth fit of {source} (every default)")
    return path


def cmd_forecast(args: argparse.Namespace) -> int:
    """``sloth forecast``: forecast new families from a saved fit."""
    from sloth.data.validation import check_observed_families
    from sloth.estimator import SlothModel
    from sloth.forecast import forecast

    out_path = check_out(args.out, force=args.force) if args.out else None
    for option, path in (("--posterior", args.posterior), ("--models", args.models),
                         ("--observed", args.observed)):
        if path is not None and not Path(path).expanduser().is_file():
            raise DataNotFoundError(f"{option} {str(path)!r}: no such file. Fix: check the path")
    posterior = args.posterior or default_posterior(quiet=args.json)
    # only what a forecast needs: the draws and the fitted data, each group verified against
    # its checksum (a damaged one is refused); not the pointwise log-likelihood, the sampler
    # statistics nor the fitted models' derived variables
    model = SlothModel.load(posterior, log_likelihood=False, sample_stats=False, derived=False)
    # validated here to speak the command line's options (forecast checks them again)
    table_options = {
        "registry": model.registry, "interface": "cli",
        "params_unit": parse_unit(args.params_unit or 1.0, "--params-unit"),
        "tokens_unit": parse_unit(args.tokens_unit or 1.0, "--tokens-unit"),
    }
    posterior_api = model.posterior_
    models = posterior_api.validate_frame(args.models, "--models", **table_options)
    observed = None
    if args.observed:
        observed = posterior_api.validate_frame(args.observed, "--observed",
                                                require_scores=True, **table_options)
        check_observed_families(observed, models, observed_name="--observed",
                                models_name="--models")
    with captured_warnings(ExtrapolationWarning) as extrapolation_warnings:
        out = forecast(model, models, observed, kind=args.kind, seed=args.seed)
    if out_path is not None:
        write_csv(out, out_path)
    conditioning = out.attrs.get("conditioning", [])
    if args.json:
        for message in extrapolation_warnings:
            print_warning(message)
        print_json({"posterior_file": str(posterior), "kind": args.kind,
                    "conditioning": conditioning,
                    "extrapolation_range": out.attrs.get("extrapolation_range"),
                    "predictions": out.to_dict(orient="records")})
        return 0
    print(f"forecast ({args.kind}; 90% intervals) from {posterior}")
    for message in extrapolation_warnings:
        print(f"warning: {message}")
    print(format_conditioning(conditioning))
    for (model_name, family), rows in out.groupby(["model", "family"], sort=False):
        print(f"\n{model_name} ({family}){format_extrapolation(rows.iloc[0])}")
        for row in rows.itertuples():
            print(f"  {row.benchmark:<12} {row.mean:6.3f}  [{row.q05:.3f}, {row.q95:.3f}]")
    if args.out:
        print(f"\npredictions written to {args.out}")
    return 0
