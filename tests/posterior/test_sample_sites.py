"""The model's sample sites rebuilt from a posterior (sloth.posterior.datatree.sample_sites)
and the structure a tree was sampled with (sloth.posterior.api.fit_structure), on the true
two-skill fit of ``comparison_fits``."""

from __future__ import annotations

from dataclasses import replace

import jax.numpy as jnp
import numpy as np
from numpyro.infer import log_likelihood

from sloth.inference.programs import model_kwargs
from sloth.model import skill_model
from sloth.posterior.api import Posterior, fit_structure
from sloth.posterior.datatree import sample_sites


def test_sample_sites_reproduce_the_fit(comparison_fits):
    # the sites rebuilt from the posterior give the stored log-likelihood back exactly,
    # through the model function itself
    true_fit = comparison_fits[1]["d2"]
    posterior = Posterior(true_fit.idata_)
    structure = fit_structure(true_fit.idata_)
    assert structure == true_fit.structure_
    sites = posterior.sample_sites(structure)
    loglik = log_likelihood(skill_model, {k: jnp.asarray(v) for k, v in sites.items()},
                            batch_ndims=2, **model_kwargs(posterior.fit_arrays(), structure))
    np.testing.assert_allclose(np.asarray(loglik["scores"]),
                               true_fit.idata_["log_likelihood"]["scores"].to_numpy(),
                               rtol=1e-5, atol=1e-5)


def test_sample_sites_of_a_non_centred_fit(comparison_fits):
    # non-centred, the model samples family_offset and builds the efficiencies from it
    true_fit = comparison_fits[1]["d2"]
    structure = replace(true_fit.structure_, centered=False)
    post = true_fit.idata_["posterior"].to_dataset()
    sites = sample_sites(post, structure)
    assert "family_efficiency" not in sites
    scale_tril = sites["family_scale"][..., :, None] * sites["family_corr_chol"]
    rebuilt = np.einsum("cdfk,cdjk->cdfj", sites["family_offset"], scale_tril)
    np.testing.assert_allclose(rebuilt, post["family_efficiency"].to_numpy(), rtol=1e-5,
                               atol=1e-5)
