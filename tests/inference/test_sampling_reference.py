"""A fixed-seed fit reproduces committed posterior means: a new NumPyro or JAX that changes
sampling fails here, loudly, with the versions in the message.

The reference (``sampling_reference.json``) holds the posterior means and their Monte Carlo
standard errors of a small simulated fit, with the versions and chain method it was made
with. Two checks:

- always: every mean lies within a few Monte Carlo standard errors of the reference (the
  posterior and the sampler's correctness are unchanged on any platform);
- under versions other than the reference's: the means match to float precision, else the
  new versions sample differently, and the test says so. (Under the reference's own
  versions a mismatch can only come from the platform's arithmetic, which the first check
  covers.)

Regenerate after a deliberate change: ``python tests/inference/test_sampling_reference.py``
(with the suite's device count: ``XLA_FLAGS=--xla_force_host_platform_device_count=4``).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).with_name("sampling_reference.json")
#: Sites whose posterior means are compared, and how many Monte Carlo standard errors apart
#: they may be.
SITES = ("loading", "skill_slope", "intercept", "noise_scale")
MCSE_TOLERANCE = 5.0
SETTINGS = dict(n_skills=2, link="logistic", num_chains=2, num_warmup=150, num_samples=150,
                map_starts=2,
                seed=0, progress_bar=False)


def versions() -> dict[str, str]:
    return {name: version(name) for name in ("numpyro", "jax", "jaxlib")}


def reference_fit() -> dict:
    """The fit of the reference: means and Monte Carlo standard errors of :data:`SITES`."""
    from numpyro.diagnostics import effective_sample_size

    from sloth import SlothModel
    from sloth.model.simulate import simulate_leaderboard

    table, _ = simulate_leaderboard(n_families=10, n_skills=2, n_benchmarks=6,
                                    missing_fraction=0.1, seed=11)
    model = SlothModel(**SETTINGS).fit(table)
    post = model.idata_["posterior"]
    out = {"versions": versions(), "chain_method": model.idata_.attrs["chain_method"],
           "anchors": model.anchors_, "means": {}, "mcse": {}}
    for site in SITES:
        draws = np.asarray(post[site].to_numpy(), dtype=float)  # (chain, draw, ...)
        sd = draws.std(axis=(0, 1))
        with np.errstate(invalid="ignore", divide="ignore"):  # constant entries (anchors)
            ess = np.nan_to_num(effective_sample_size(draws), nan=1.0)
        out["means"][site] = draws.mean(axis=(0, 1)).tolist()
        out["mcse"][site] = np.where(sd > 0, sd / np.sqrt(np.maximum(ess, 1.0)), 0.0).tolist()
    return out


@pytest.fixture(scope="module")
def fitted() -> dict:
    return reference_fit()


def test_sampling_matches_the_committed_reference(fitted):
    reference = json.loads(REFERENCE.read_text())
    now = fitted["versions"]
    context = (f"now numpyro {now['numpyro']}, jax {now['jax']}, jaxlib {now['jaxlib']}; "
               f"reference made with numpyro {reference['versions']['numpyro']}, jax "
               f"{reference['versions']['jax']}, jaxlib {reference['versions']['jaxlib']}")
    assert fitted["anchors"] == reference["anchors"], f"the anchors changed ({context})"
    for site in SITES:
        mean, ref = np.asarray(fitted["means"][site]), np.asarray(reference["means"][site])
        mcse = np.asarray(reference["mcse"][site])
        far = np.abs(mean - ref) > MCSE_TOLERANCE * mcse + 1e-6
        assert not far.any(), (
            f"the posterior mean of {site} moved by more than {MCSE_TOLERANCE} Monte Carlo "
            f"standard errors at {np.argwhere(far).tolist()}: sampling changed ({context})")
    if now != reference["versions"] and fitted["chain_method"] == reference["chain_method"]:
        for site in SITES:
            np.testing.assert_allclose(
                fitted["means"][site], reference["means"][site], rtol=1e-5, atol=1e-7,
                err_msg=f"SAMPLING CHANGED under a new version ({context}): the draws of "
                        f"{site} differ from the reference. Check the fit's diagnostics, then "
                        "widen the pins in pyproject.toml and regenerate the reference.")


if __name__ == "__main__":
    import sloth

    sloth.configure(host_devices=4, compilation_cache=False)
    result = reference_fit()
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in result.items()
             if k not in ("means", "mcse")]
    for group in ("means", "mcse"):
        entries = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}"
                             for k, v in result[group].items())
        lines.append(f" {json.dumps(group)}: {{\n{entries}\n }}")
    REFERENCE.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {REFERENCE} ({result['versions']}, {result['chain_method']})", file=sys.stderr)
