"""Bayesian fits of loss scaling laws with NUTS.

Model (for a form with internal parameters ``theta``)::

    theta ~ form.prior()                       # stated per form, see below
    sigma ~ HalfNormal(0.05)                   # scale of log-loss residuals
    log L_i ~ StudentT(nu=4, log L_hat(N_i, D_i; theta), sigma)

The Student-t likelihood plays the role of the Huber loss of the least-squares fit (robust
to a few off points); ``nu=None`` gives a Normal likelihood.

Priors
------
chinchilla
    ``e = log E ~ Normal(0.5, 1)``; ``alpha, beta ~ HalfNormal(1)``; the N term at
    ``N = 1e9``, ``log(A / 1e9^alpha) ~ Normal(-1, 1.5)``, and the D term at ``D = 1e10``,
    ``log(B / 1e10^beta) ~ Normal(-1, 1.5)``. (Sampling the terms at reference scales
    removes the strong ``log A``-``alpha`` correlation of raw units.)
farseer
    Each of the law's three N-dependent exponents ``f_k(n) = a_k n^p_k + b_k`` is written
    ``f0_k + c_k (n^p_k - 1) / p_k`` (``n = N / 1e9``): ``f0_k ~ Normal(0, 2)`` (value at
    ``N = 1e9``), ``c_k ~ Normal(0, 1)`` (local log-log slope), ``p_k ~ Normal(0, 0.5)``.
    These weakly informative priors are also what regularizes Farseer's weakly identified
    directions (``a_k``, ``b_k`` separately, when ``p_k`` is near 0).

Chains start at the robust least-squares fit (``init="lsq"``), so that multi-modality of
the law does not split them across modes, and use a dense mass matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sloth.laws.fit import LawFit, fit_law
from sloth.laws.forms import LawForm, get_law
from sloth.laws.runs import validate_runs

__all__ = ["fit_law_bayes", "law_model"]


def law_model(x_n, x_d, log_loss=None, *, form: LawForm, nu: float | None = 4.0,
              sigma_scale: float = 0.05) -> None:
    """NumPyro model of log losses under a law form.

    Parameters
    ----------
    x_n, x_d : array, shape (n,)
        Rescaled log inputs ``log(N / N0)``, ``log(D / D0)`` of the form.
    log_loss : array, shape (n,), optional
        Observed log losses; ``None`` to sample predictions.
    form : LawForm
        The law.
    nu : float or None
        Student-t degrees of freedom; ``None`` for a Normal likelihood.
    sigma_scale : float
        Scale of the HalfNormal prior on the residual scale.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    theta = numpyro.deterministic("theta", form.prior())
    sigma = numpyro.sample("sigma", dist.HalfNormal(sigma_scale))
    mu = form.log_loss([theta[i] for i in range(form.n_params)], x_n, x_d, jnp)
    with numpyro.plate("run", x_n.shape[0]):
        if nu is None:
            numpyro.sample("obs", dist.Normal(mu, sigma), obs=log_loss)
        else:
            numpyro.sample("obs", dist.StudentT(nu, mu, sigma), obs=log_loss)


def fit_law_bayes(runs: pd.DataFrame, law: str | LawForm = "chinchilla", *,
                  num_warmup: int = 500, num_samples: int = 500, num_chains: int = 2,
                  seed: int = 0, nu: float | None = 4.0, sigma_scale: float = 0.05,
                  init: str = "lsq", target_accept: float = 0.9, dense_mass: bool = True,
                  chain_method: str | None = None, skill: str | None = None,
                  lsq_max_starts: int | None = 128, init_fit: LawFit | None = None) -> LawFit:
    """Fit a loss law with NUTS.

    Parameters
    ----------
    runs : DataFrame, n rows
        Runs with ``N``, ``D`` (or ``C``) and ``loss``.
    law : str or LawForm
        Registered form.
    num_warmup, num_samples, num_chains : int
        NUTS settings; draws kept = ``num_samples * num_chains``.
    seed : int
        PRNG seed (the fit is deterministic given it).
    nu : float or None
        Student-t degrees of freedom of the likelihood (``None``: Normal).
    sigma_scale : float
        HalfNormal scale of the residual standard deviation (log-loss units).
    init : {"lsq", "median"}
        Start chains at the robust least-squares fit, or at the prior median.
    target_accept : float
        NUTS target acceptance probability.
    dense_mass : bool
        Adapt a dense mass matrix.
    chain_method : str, optional
        NumPyro chain method; default ``"parallel"`` when enough devices, else
        ``"sequential"``.
    skill : str, optional
        Skill label stored in the fit.
    lsq_max_starts : int or None
        ``max_starts`` of the least-squares fit used to start the chains.
    init_fit : LawFit, optional
        A robust fit of the same law to the same runs to start from (skips refitting).

    Returns
    -------
    LawFit
        ``method="nuts"``; ``theta`` is the posterior median of each internal parameter,
        ``draws`` the posterior draws (shape ``(num_chains * num_samples, P)``);
        ``diagnostics`` has ``max_rhat``, ``min_ess``, ``divergences``.
    """
    import jax
    import jax.numpy as jnp
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS, init_to_median, init_to_value

    form = get_law(law)
    runs = validate_runs(runs, min_runs=form.n_params + 1)
    x_n, x_d = form.inputs(runs["N"].to_numpy(), runs["D"].to_numpy())
    y = np.log(runs["loss"].to_numpy())
    settings: dict[str, Any] = {
        "num_warmup": num_warmup, "num_samples": num_samples, "num_chains": num_chains,
        "seed": seed, "nu": nu, "sigma_scale": sigma_scale, "init": init,
        "target_accept": target_accept, "dense_mass": dense_mass,
        "likelihood": "normal" if nu is None else f"student_t(nu={nu})",
    }
    if init == "lsq":
        if init_fit is not None and init_fit.law != form.name:
            raise ValueError(f"init_fit is a {init_fit.law} fit, not {form.name}")
        start = (init_fit if init_fit is not None
                 else fit_law(runs, form, n_boot=0, max_starts=lsq_max_starts))
        resid = np.log(start.predict(runs["N"], runs["D"])) - y
        values = dict(form.prior_sites(start.theta))
        values["sigma"] = float(max(1.4826 * np.median(np.abs(resid)), 1e-4))
        strategy = init_to_value(values=values)
        settings["lsq_theta"] = start.theta.tolist()
    elif init == "median":
        strategy = init_to_median()
    else:
        raise ValueError(f"init must be 'lsq' or 'median', got {init!r}")
    if chain_method is None:
        chain_method = "parallel" if jax.local_device_count() >= num_chains else "sequential"
    kernel = NUTS(law_model, init_strategy=strategy, target_accept_prob=target_accept,
                  dense_mass=dense_mass)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples,
                num_chains=num_chains, chain_method=chain_method, progress_bar=False)
    with jax.enable_x64(True):
        mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(x_n), jnp.asarray(x_d), jnp.asarray(y),
                 form=form, nu=nu, sigma_scale=sigma_scale, extra_fields=("diverging",))
        grouped = mcmc.get_samples(group_by_chain=True)
        diverging = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    theta_chains = np.asarray(grouped["theta"], dtype=float)            # (chains, S, P)
    draws = theta_chains.reshape(-1, form.n_params)
    sites = {k: np.asarray(v, dtype=float) for k, v in grouped.items()
             if k != "theta"}
    rhat, ess = [], []
    for v in sites.values():
        v = v.reshape(v.shape[0], v.shape[1], -1)
        for j in range(v.shape[-1]):
            if num_chains > 1:
                rhat.append(float(split_gelman_rubin(v[..., j])))
            ess.append(float(effective_sample_size(v[..., j])))
    diagnostics = {
        "max_rhat": float(np.nanmax(rhat)) if rhat else float("nan"),
        "min_ess": float(np.nanmin(ess)),
        "divergences": diverging,
        "sigma_median": float(np.median(sites["sigma"])),
    }
    return LawFit(law=form.name, theta=np.median(draws, axis=0), draws=draws, method="nuts",
                  n_runs=len(runs), skill=skill, settings=settings, diagnostics=diagnostics,
                  law_form=form)
