"""The posterior file format: configuration blocks from the constructor's signature, the
format id and version, the migration of older files, refusal of foreign, newer and damaged
files."""

import inspect
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sloth import SlothModel
from sloth.data.registry import BenchmarkInfo, BenchmarkRegistry, default_registry
from sloth.estimator import MODEL_KEYS, SAMPLER_KEYS
from sloth.exceptions import DataValidationError
from sloth.model.simulate import simulate_leaderboard
from sloth.posterior.datatree import DERIVED_VARIABLES
from sloth.posterior.fileformat import (
    FORMAT_ID,
    FORMAT_VERSION,
    format_version,
    migrate,
    model_config,
    posterior_attrs,
    read_posterior,
    sampler_config,
    write_posterior,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIGNATURE = inspect.signature(SlothModel.__init__).parameters
KEYWORDS = [name for name in SIGNATURE if name != "self"]


def _registry() -> BenchmarkRegistry:
    registry = default_registry().copy()
    registry.register("MyQA", floor=0.2, n_items=321, description="a benchmark of one's own")
    return registry


#: A value other than the default for every constructor keyword.
NON_DEFAULT = {
    "n_skills": 2,
    "benchmarks": ("MMLU", "ARC", "GSM8K"),
    "extra_covariates": ("instruct",),
    "link": "logistic",
    "family_benchmark_effects": False,
    "noise": "normal",
    "family_parametrization": "non_centered",
    "anchors": ("MMLU", "GSM8K"),
    "priors": {"loading_scale": 0.7},
    "registry": _registry(),
    "num_chains": 3,
    "num_warmup": 123,
    "num_samples": 45,
    "max_samples": 90,
    "target_accept": 0.85,
    "dense_mass": True,
    "max_tree_depth": 7,
    "map_starts": 5,
    "seed": 17,
    "progress_bar": False,
}


def _comparable(params: dict) -> dict:
    """Constructor values with the registry as its entries (it has no ``==``)."""
    out = dict(params)
    if out.get("registry") is not None:
        out["registry"] = [out["registry"].get(b) for b in out["registry"]]
    for name in ("benchmarks", "extra_covariates", "anchors"):
        if out.get(name) is not None:
            out[name] = list(out[name])
    return out


@pytest.fixture(scope="module")
def fitted():
    table, _ = simulate_leaderboard(n_families=8, n_skills=1, n_benchmarks=6, seed=4)
    model = SlothModel(1, num_chains=2, num_warmup=60, num_samples=40, map_starts=1,
                       target_accept=0.85, seed=3, progress_bar=False, registry=_registry(),
                       priors={"loading_scale": 0.9})
    return model.fit(table), table


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("posterior") / "fit.nc"
    fitted[0].save(path)
    return path


# ---------------------------------------------------------------------- configuration
def test_model_and_sampler_blocks_partition_the_constructor_signature():
    assert len(set(MODEL_KEYS)) == len(MODEL_KEYS)
    assert len(set(SAMPLER_KEYS)) == len(SAMPLER_KEYS)
    assert not set(MODEL_KEYS) & set(SAMPLER_KEYS)
    assert sorted([*MODEL_KEYS, *SAMPLER_KEYS]) == sorted(KEYWORDS)
    config = SlothModel().get_config()
    assert list(config) == ["model_config", "sampler_config"]
    assert set(config["model_config"]) == set(MODEL_KEYS)
    assert set(config["sampler_config"]) == set(SAMPLER_KEYS)


def test_every_constructor_keyword_round_trips_through_the_config():
    assert sorted(NON_DEFAULT) == sorted(KEYWORDS)  # the table covers the signature
    for name, value in NON_DEFAULT.items():
        default = SIGNATURE[name].default
        assert _comparable({name: value}) != _comparable({name: default}), name
    model = SlothModel(**NON_DEFAULT)
    config = json.loads(json.dumps(model.get_config()))  # JSON, as in the file
    back = SlothModel.from_config(config)
    assert back.get_config() == model.get_config()
    expected = _comparable(model.get_params())
    expected["priors"] = {**back.priors, "loading_scale": 0.7}  # saved as the full prior scales
    assert _comparable(back.get_params()) == expected
    assert back.get_params()["registry"].get("MyQA") == BenchmarkInfo(
        "MyQA", 0.2, 321, "a benchmark of one's own")


def test_get_params_set_params_and_from_config_refuse_unknown_keys():
    model = SlothModel()
    assert model.set_params(seed=4, progress_bar=False) is model
    assert model.get_params()["seed"] == 4 and not model.progress_bar
    with pytest.raises(ValueError, match="unknown parameters \\['sed'\\]"):
        model.set_params(sed=1)
    config = model.get_config()
    config["sampler_config"]["chains"] = 2
    del config["model_config"]["registry"]
    with pytest.raises(DataValidationError, match="model_config lacks \\['registry'\\]"):
        SlothModel.from_config(config)
    config["model_config"]["registry"] = None
    with pytest.raises(DataValidationError, match="unknown keys \\['chains'\\]"):
        SlothModel.from_config(config)


@pytest.mark.parametrize("name,value,message", [
    ("benchmarks", "MMLU", "must be a list of names"),
    ("progress_bar", "yes", "allowed values are True and False"),
    ("seed", 1.5, "seed=1.5 must be a non-negative integer"),
    ("registry", {"MMLU": 0.25}, "must be a sloth.data.BenchmarkRegistry"),
    ("priors", {"loadings": 1.0}, "unknown prior 'loadings'"),
    ("target_accept", 1.0, "must be a number in \\[0.5, 1\\)"),
])
def test_each_keyword_is_validated_with_the_allowed_values(name, value, message, fitted):
    table = fitted[1]
    with pytest.raises(ValueError, match=message):
        SlothModel(**{name: value}).fit(table)


def test_every_constructor_keyword_round_trips_through_a_file(fitted, saved, tmp_path):
    model, _ = fitted
    loaded = SlothModel.load(saved)
    assert _comparable(loaded.get_params()) == {
        **_comparable(model.get_params()), "priors": loaded.priors}
    assert loaded.get_config() == model.get_config()
    # every keyword at a value other than its default, through write_posterior/read_posterior
    odd = SlothModel(**NON_DEFAULT)
    tree = model.idata_.copy()
    tree.attrs.update(posterior_attrs(
        **odd.get_config(), scaler={}, anchors=[], skipped=[], chain_method="sequential",
        map_seconds=0.0, sampling_seconds=0.0))
    write_posterior(tree, tmp_path / "odd.nc")
    back = read_posterior(tmp_path / "odd.nc")
    rebuilt = SlothModel.from_config({"model_config": model_config(back),
                                      "sampler_config": sampler_config(back)})
    assert rebuilt.get_config() == odd.get_config()


# ---------------------------------------------------------------------- the file
def test_file_carries_id_version_and_two_config_blocks(fitted, saved):
    model, _ = fitted
    with xr.open_datatree(saved, engine="h5netcdf") as raw:
        attrs = dict(raw.attrs)
        stored = set(raw["posterior"].data_vars)
    assert attrs["sloth_format"] == FORMAT_ID == "sloth.posterior"
    assert int(attrs["format_version"]) == FORMAT_VERSION == 4
    assert attrs["sloth_version"]
    assert "config" not in attrs
    assert json.loads(attrs["model_config"]) == model.get_config()["model_config"]
    assert json.loads(attrs["sampler_config"]) == model.get_config()["sampler_config"]
    assert not stored & set(DERIVED_VARIABLES)  # derived variables are not stored ...
    back = read_posterior(saved)  # ... and recomputed exactly on reading
    for name in DERIVED_VARIABLES:
        np.testing.assert_array_equal(back["posterior"][name].to_numpy(),
                                      model.idata_["posterior"][name].to_numpy())


def test_round_trip_predicts_identically(fitted, saved):
    model, table = fitted
    loaded = SlothModel.load(saved)
    assert loaded.anchors_ == model.anchors_
    frame = table.to_frame().iloc[:4]
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))


def test_version_1_file_is_migrated(fitted, tmp_path, write_version_1):
    model, table = fitted
    path = tmp_path / "v1.nc"
    write_version_1(model.idata_, path)
    with xr.open_datatree(path, engine="h5netcdf") as raw:
        assert "config" in raw.attrs and "sloth_format" not in raw.attrs
        assert format_version(raw) == 1
    loaded = SlothModel.load(path)
    assert loaded.idata_.attrs["format_version"] == FORMAT_VERSION
    assert "config" not in loaded.idata_.attrs
    expected = model.get_config()
    expected["model_config"]["registry"] = None  # format 1 kept no registry
    expected["sampler_config"]["max_samples"] = None  # format 1 fits drew num_samples exactly
    assert loaded.get_config() == expected  # progress_bar False, as format 1 loaded models
    frame = table.to_frame().iloc[:4]
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))
    # a file from before family_benchmark_effects: the option was off then
    write_version_1(model.idata_, path, drop=("family_benchmark_effects",))
    assert SlothModel.load(path).family_benchmark_effects is False


@pytest.mark.parametrize("link", ["flexible", "ceiling"])
def test_version_2_file_of_a_ceiling_link_keeps_its_curves(link, tmp_path):
    """Format 2's links applied the ceiling as ``h r_k(eta)``; format 3 moves the rise's
    argument by ``ceiling_offset``. A format-2 file (the intercepts of the old curve) read by
    this sloth gives every draw the mean scores it had."""
    from sloth.io import save_datatree
    from sloth.model import ceiling_offset, compute_mean_score, link_mean

    table, _ = simulate_leaderboard(n_families=6, n_skills=1, n_benchmarks=5, seed=2)
    model = SlothModel(1, link=link, num_chains=1, num_warmup=40, num_samples=20,
                       map_starts=1, seed=1, progress_bar=False).fit(table)
    post = model.idata_["posterior"]
    ceiling = post["link_ceiling"].to_numpy()
    shape = post["link_shape"].to_numpy() if "link_shape" in post else None
    old_intercept = post["intercept"].to_numpy() - ceiling_offset(ceiling, shape)
    # the old curve at the old intercepts is the new curve at the new ones
    skills = post["skills"].to_numpy()
    loading = post["loading"].to_numpy()
    floors = np.asarray(table.floors)
    eta_old = np.einsum("cdnk,cdjk->cdnj", skills, loading) + old_intercept[..., None, :]
    rise = link_mean(eta_old, 0.0, None if shape is None else shape[..., None, :])
    old_mean = floors + (1 - floors) * ceiling[..., None, :] * rise
    np.testing.assert_allclose(post["mean_score"].to_numpy(), old_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        compute_mean_score(skills, loading, post["intercept"].to_numpy(), floors, shape,
                           ceiling), old_mean, rtol=1e-5, atol=1e-6)
    # written as format 2 wrote it: the old intercepts, version 2
    old = model.idata_.copy()
    old["posterior"] = old["posterior"].to_dataset().assign(
        intercept=post["intercept"].copy(data=old_intercept.astype(post["intercept"].dtype)))
    old.attrs = {**old.attrs, "format_version": 2}
    from sloth.posterior.datatree import without_derived

    save_datatree(without_derived(old), tmp_path / "v2.nc")
    loaded = SlothModel.load(tmp_path / "v2.nc")
    assert loaded.idata_.attrs["format_version"] == FORMAT_VERSION
    np.testing.assert_allclose(loaded.idata_["posterior"]["intercept"].to_numpy(),
                               post["intercept"].to_numpy(), rtol=1e-5, atol=1e-5)
    frame = table.to_frame().iloc[:5]
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame), atol=1e-5)
    # a logistic fit's file has no ceiling: format 2 -> 3 leaves it as it was
    tree = xr.DataTree(xr.Dataset(attrs={"model_config": json.dumps({"link": "logistic"})}))
    assert migrate(tree, 2).attrs["format_version"] == FORMAT_VERSION


def test_version_3_file_drew_exactly_num_samples(fitted, tmp_path):
    """Format 4 adds ``max_samples``; a format-3 fit drew ``num_samples`` exactly: None."""
    from sloth.io import save_datatree
    from sloth.posterior.datatree import without_derived

    model, table = fitted
    old = model.idata_.copy()
    sampler = json.loads(old.attrs["sampler_config"])
    del sampler["max_samples"]
    old.attrs = {**old.attrs, "format_version": 3, "sampler_config": json.dumps(sampler)}
    save_datatree(without_derived(old), tmp_path / "v3.nc")
    loaded = SlothModel.load(tmp_path / "v3.nc")
    assert loaded.idata_.attrs["format_version"] == FORMAT_VERSION
    assert loaded.max_samples is None
    assert sampler_config(old)["max_samples"] is None  # in-memory trees migrate too
    frame = table.to_frame().iloc[:4]
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))


def test_migrate_splits_the_single_config():
    config = {"n_skills": 2, "noise": "normal", "priors": {}, "num_chains": 2, "seed": 1}
    tree = xr.DataTree(xr.Dataset(attrs={"config": json.dumps(config)}))
    new = migrate(tree, 1)
    assert "config" in tree.attrs  # the input is left as it was
    assert new.attrs["sloth_format"] == FORMAT_ID
    assert new.attrs["format_version"] == FORMAT_VERSION
    assert model_config(new) == {"n_skills": 2, "noise": "normal", "priors": {},
                                 "link": "logistic", "family_benchmark_effects": False,
                                 "registry": None}
    assert sampler_config(new) == {"num_chains": 2, "seed": 1, "progress_bar": False,
                                   "max_samples": None}
    assert model_config(tree) == model_config(new)  # readers migrate trees in memory too


def test_newer_format_is_refused_with_upgrade_message(fitted, tmp_path):
    tree = fitted[0].idata_.copy()
    tree.attrs.update(format_version=FORMAT_VERSION + 1, sloth_version="9.9.0")
    path = tmp_path / "future.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    message = (f"written by sloth 9.9.0 with format version {FORMAT_VERSION + 1}; this sloth "
               f".* reads up to format version {FORMAT_VERSION}: upgrade sloth")
    with pytest.raises(DataValidationError, match=message) as info:
        SlothModel.load(path)
    assert "future.nc" in str(info.value)


def test_foreign_netcdf_is_refused(fitted, tmp_path):
    path = tmp_path / "foreign.nc"
    xr.Dataset({"a": ("x", [1.0, 2.0])}, attrs={"config": "{}"}).to_netcdf(
        path, engine="h5netcdf")
    with pytest.raises(DataValidationError, match=r"foreign\.nc.* is not a sloth posterior"):
        SlothModel.load(path)
    # sloth's groups but another format's id
    tree = fitted[0].idata_.copy()
    tree.attrs["sloth_format"] = "someone.else"
    tree.to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(DataValidationError, match=r"other\.nc.* is not a sloth posterior"):
        read_posterior(tmp_path / "other.nc")
    with pytest.raises(DataValidationError, match="pass the DataTree of a fitted SlothModel"):
        write_posterior(xr.DataTree(xr.Dataset(attrs={"sloth_format": FORMAT_ID,
                                                      "format_version": 3})),
                        tmp_path / "empty.nc")


@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_truncated_or_non_hdf5_file_is_refused_naming_it(saved, tmp_path, damage):
    path = tmp_path / f"{damage}.nc"
    data = saved.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"model,score\n")
    with pytest.raises(DataValidationError) as info:
        SlothModel.load(path)
    message = str(info.value)
    assert f"{damage}.nc" in message and "not a file sloth wrote" in message
    assert "synchronously" not in message and "signature" not in message  # no h5py text
