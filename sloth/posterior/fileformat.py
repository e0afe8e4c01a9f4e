"""The posterior file: a netCDF file (h5netcdf) of the fit's ``xarray.DataTree``, no pickle.

A sloth posterior file is recognised by its root attributes:

``sloth_format``
    The id :data:`FORMAT_ID` (``"sloth.posterior"``): files without it are refused, except
    files of format version 1 (below).
``format_version``
    An integer, :data:`FORMAT_VERSION` for files this sloth writes. Files of an older version
    are migrated on reading by :func:`migrate`; files of a newer version are refused with a
    message that says which sloth wrote them.
``sloth_version``
    The version of sloth that wrote (fitted) the posterior.
``model_config``, ``sampler_config``
    JSON objects: the estimator's model settings and sampler settings, one block each (see
    :meth:`sloth.SlothModel.get_config`).
``scaler``, ``anchors``, ``skipped``
    JSON: the covariate standardization, the anchor benchmarks, the models the fit skipped.
``chain_method``, ``map_seconds``, ``sampling_seconds``
    How the chains ran and how long the fit took.

Version history:

1. Files of sloth 0.1 before the format had a version: no ``sloth_format`` nor
   ``format_version``, one ``config`` attribute holding all constructor options together,
   without ``progress_bar`` and ``registry``, and without ``family_benchmark_effects`` in
   files written before that option existed.
2. ``sloth_format`` and ``format_version``; ``config`` split into ``model_config`` and
   ``sampler_config``, every constructor keyword present.
3. The links with a ceiling (``"ceiling"``, ``"flexible"``) move the argument of the rise by
   :func:`sloth.model.ceiling_offset` (the ceiling leaves the curve's low end alone). The
   curves are the same: a file of format 2 is brought up exactly by adding the offset of
   each draw's ceiling (and shape) to its intercepts (``intercept`` of every group that holds
   it and ``link_ceiling``).
4. ``sampler_config`` holds ``max_samples`` (draws per chain at most, when the chains draw on
   until they have mixed); files of format 3 drew exactly ``num_samples``: ``None``.

A file may hold further groups besides the fit's, e.g. the ``predictions`` and
``predictions_constant_data`` of :func:`sloth.forecast.forecast_datatree` (whose
extrapolation figures are plain data variables): they are read and written as they are, and
adding variables to such optional groups does not change the format version.

Files hold no derived variables (:data:`sloth.posterior.datatree.DERIVED_VARIABLES`):
:func:`write_posterior` leaves them out (they are most of the size) and :func:`read_posterior`
recomputes them exactly.

Changing the format (for example a new constructor keyword, which every file must carry):
raise :data:`FORMAT_VERSION` by one, and add to :func:`migrate` the step that brings a file of
the previous version up (for a new keyword: the value that reproduces what older sloth did).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import h5py
import xarray as xr

from sloth import __version__
from sloth.exceptions import CorruptFileError, DataValidationError
from sloth.io import CHECKSUM_ATTR, open_datatree, save_datatree
from sloth.posterior.datatree import with_derived, without_derived

__all__ = [
    "FORMAT_ID",
    "FORMAT_VERSION",
    "format_version",
    "migrate",
    "model_config",
    "posterior_attrs",
    "read_posterior",
    "sampler_config",
    "tree_of",
    "write_posterior",
]

#: Value of the ``sloth_format`` attribute that marks a sloth posterior file.
FORMAT_ID = "sloth.posterior"

#: Version of the file format this sloth writes (and the newest it reads).
FORMAT_VERSION = 4

#: Groups every posterior file holds.
GROUPS = ("posterior", "observed_data", "constant_data")

#: Root attributes every posterior tree holds once migrated to :data:`FORMAT_VERSION`.
REQUIRED_ATTRS = ("sloth_format", "format_version", "model_config", "sampler_config",
                  "scaler", "anchors")

_FIX = "Fix: give a posterior file written by SlothModel.save or 'sloth fit --out FILE'"


# ---------------------------------------------------------------------- attributes
def posterior_attrs(
    model_config: Mapping[str, Any],
    sampler_config: Mapping[str, Any],
    *,
    scaler: Mapping[str, Any],
    anchors: Sequence[str],
    skipped: Sequence[Mapping[str, Any]],
    chain_method: str,
    map_seconds: float,
    sampling_seconds: float,
) -> dict[str, str | int]:
    """Root attributes of a fit's posterior tree, in the current file format.

    Parameters
    ----------
    model_config, sampler_config : mapping
        JSON-serializable model and sampler settings (the two blocks of
        :meth:`sloth.SlothModel.get_config`).
    scaler : mapping
        The covariate standardization (:meth:`sloth.model.design.CovariateScaler.to_attrs`).
    anchors : sequence of str
        Anchor benchmark of each skill.
    skipped : sequence of mapping
        Records of the models the fit skipped.
    chain_method : str
        How the chains ran (``"parallel"``, ``"vectorized"``...).
    map_seconds, sampling_seconds : float
        Durations of the MAP fits and of sampling.

    Returns
    -------
    dict
        Attribute name -> value (JSON strings, and the integer ``format_version``).
    """
    return {
        "sloth_format": FORMAT_ID,
        "format_version": FORMAT_VERSION,
        "sloth_version": __version__,
        "model_config": json.dumps(dict(model_config)),
        "sampler_config": json.dumps(dict(sampler_config)),
        "scaler": json.dumps(dict(scaler)),
        "anchors": json.dumps(list(anchors)),
        "skipped": json.dumps([dict(r) for r in skipped]),
        "chain_method": str(chain_method),
        "map_seconds": f"{map_seconds:.3f}",
        "sampling_seconds": f"{sampling_seconds:.3f}",
    }


def format_version(tree: xr.DataTree) -> int:
    """Format version of a posterior tree (1 for trees of sloth before format versions).

    Raises
    ------
    DataValidationError
        If the tree carries another format's id or a version that is not an integer.
    """
    attrs = tree.attrs
    if "sloth_format" not in attrs:
        return 1
    if attrs["sloth_format"] != FORMAT_ID:
        raise DataValidationError(
            f"sloth_format is {attrs['sloth_format']!r}, not {FORMAT_ID!r}: not a sloth "
            "posterior"
        )
    version = attrs.get("format_version")
    try:
        number = int(version)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if number is None or number != version or number < 1:
        raise DataValidationError(
            f"format_version is {version!r}, not a positive integer: a damaged sloth posterior"
        )
    return number


def _block(tree: xr.DataTree, name: str) -> dict[str, Any]:
    if format_version(tree) < FORMAT_VERSION:
        # the settings are root attributes: migrate those alone, not the draws
        tree = migrate(xr.DataTree(xr.Dataset(attrs=tree.attrs)), format_version(tree))
    if name not in tree.attrs:
        raise DataValidationError(
            f"the posterior has no {name!r} attribute: it was not written by sloth"
        )
    try:
        block = json.loads(tree.attrs[name])
    except (TypeError, ValueError):
        block = None
    if not isinstance(block, dict):
        raise DataValidationError(
            f"the {name!r} attribute of the posterior is not a JSON object: a damaged file"
        )
    return block


def model_config(tree: xr.DataTree) -> dict[str, Any]:
    """The model settings a posterior was fitted with (migrated from older trees).

    Raises
    ------
    DataValidationError
        If ``tree`` holds no sloth settings.
    """
    return _block(tree, "model_config")


def sampler_config(tree: xr.DataTree) -> dict[str, Any]:
    """The sampler settings a posterior was fitted with (migrated from older trees).

    Raises
    ------
    DataValidationError
        If ``tree`` holds no sloth settings.
    """
    return _block(tree, "sampler_config")


# ---------------------------------------------------------------------- migration
#: Sampler settings of format 1's single ``config`` (the other keys are model settings).
_V1_SAMPLER_KEYS = ("num_chains", "num_warmup", "num_samples", "target_accept", "dense_mass",
                    "max_tree_depth", "map_starts", "seed")


def _from_1(attrs: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2: ``config`` split into model and sampler blocks, with the keywords
    format 1 lacked set to what sloth did then."""
    try:
        config = json.loads(attrs.pop("config"))
    except (KeyError, TypeError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise DataValidationError(
            "no JSON object in the 'config' attribute: not a sloth posterior"
        )
    config.setdefault("link", "logistic")  # files before the flexible links
    config.setdefault("family_benchmark_effects", False)  # files before the option
    config.setdefault("registry", None)  # format 1 kept no registry: the default one
    sampler = {k: config.pop(k) for k in _V1_SAMPLER_KEYS if k in config}
    sampler.setdefault("progress_bar", False)  # format 1 loaded models silent
    attrs.update(sloth_format=FORMAT_ID, model_config=json.dumps(config),
                 sampler_config=json.dumps(sampler))
    return attrs


def _tree_from_1(tree: xr.DataTree) -> xr.DataTree:
    """Format 1 -> 2 on a tree (the root attributes only, :func:`_from_1`)."""
    tree.attrs = _from_1(dict(tree.attrs))
    return tree


def _from_2(tree: xr.DataTree) -> xr.DataTree:
    """Format 2 -> 3: the intercepts of a link with a ceiling moved by the ceiling's offset
    (:func:`sloth.model.ceiling_offset`), which gives every draw the curves it had."""
    nodes = [node for node in tree.subtree
             if "intercept" in node.dataset and "link_ceiling" in node.dataset]
    if not nodes:  # the logistic and Richards links have no ceiling: nothing moves
        return tree
    from sloth.model import ceiling_offset  # JAX: only for files that need the move

    for node in nodes:
        data = node.dataset
        shape = data["link_shape"].to_numpy() if "link_shape" in data else None
        offset = ceiling_offset(data["link_ceiling"].to_numpy(), shape)
        moved = data["intercept"] + xr.DataArray(offset, dims=data["link_ceiling"].dims,
                                                 coords=data["link_ceiling"].coords)
        node.dataset = data.assign(intercept=moved.astype(data["intercept"].dtype))
    return tree


def _from_3(tree: xr.DataTree) -> xr.DataTree:
    """Format 3 -> 4: ``max_samples`` in the sampler settings (``None``: format 3 fits drew
    exactly ``num_samples``)."""
    try:
        sampler = json.loads(tree.attrs["sampler_config"])
    except (KeyError, TypeError, ValueError):
        return tree  # no settings to extend: reading the file reports it
    if isinstance(sampler, dict):
        sampler.setdefault("max_samples", None)
        tree.attrs = {**tree.attrs, "sampler_config": json.dumps(sampler)}
    return tree


#: Migration steps: version v -> the function bringing a tree (a shallow copy, changed in
#: place) to version v + 1.
_STEPS: dict[int, Callable[[xr.DataTree], xr.DataTree]] = {1: _tree_from_1, 2: _from_2,
                                                          3: _from_3}


def migrate(tree: xr.DataTree, from_version: int) -> xr.DataTree:
    """A posterior tree of format ``from_version`` brought to :data:`FORMAT_VERSION`.

    Parameters
    ----------
    tree : xarray.DataTree
        A posterior tree as read from a file of format ``from_version``; not modified.
    from_version : int
        Its format version (see :func:`format_version`).

    Returns
    -------
    xarray.DataTree
        A shallow copy with the attributes of the current format.

    Raises
    ------
    DataValidationError
        If ``from_version`` is newer than this sloth reads, or not a known version.
    """
    if from_version > FORMAT_VERSION:
        raise DataValidationError(_too_new_message(tree, from_version))
    if from_version < 1:
        raise DataValidationError(f"format version {from_version} does not exist")
    out = tree.copy(deep=False)
    for version in range(from_version, FORMAT_VERSION):
        out = _STEPS[version](out)
        out.attrs = {**out.attrs, "format_version": version + 1}
    return out


def _too_new_message(tree: xr.DataTree, version: int) -> str:
    writer = tree.attrs.get("sloth_version", "an unknown version")
    return (
        f"written by sloth {writer} with format version {version}; this sloth "
        f"({__version__}) reads up to format version {FORMAT_VERSION}: upgrade sloth"
    )


# ---------------------------------------------------------------------- files
def _write(tree: xr.DataTree, path: str) -> None:
    """The one place bytes go to disk: atomically (a failed or interrupted write leaves the
    previous file whole), with a checksum of the data verified on the written file."""
    save_datatree(tree, path)


def write_posterior(tree: xr.DataTree, path: str | os.PathLike) -> None:
    """Write a posterior tree to ``path`` (netCDF through h5netcdf) in the current format.

    The derived variables are left out (:func:`read_posterior` recomputes them).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's posterior (:attr:`sloth.SlothModel.idata_`), of any format version.
    path : str or path-like

    Raises
    ------
    DataValidationError
        If ``tree`` is not a sloth posterior (no groups or settings of one).
    """
    version = format_version(tree)
    if version < FORMAT_VERSION:
        tree = migrate(tree, version)
    missing = [g for g in GROUPS if g not in tree.children]
    missing += [a for a in REQUIRED_ATTRS if a not in tree.attrs]
    if missing:
        raise DataValidationError(
            f"cannot write a posterior without {missing}: pass the DataTree of a fitted "
            "SlothModel (its idata_)"
        )
    _write(without_derived(tree), os.fspath(path))


def read_posterior(path: str | os.PathLike, *, log_likelihood: bool = True,
                   sample_stats: bool = True, derived: bool = True) -> xr.DataTree:
    """Read a posterior file, migrated to the current format, with its derived variables.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`write_posterior` (any format version up to
        :data:`FORMAT_VERSION`).
    log_likelihood : bool, default True
        Read the pointwise log-likelihood (most of the file: model comparison needs it,
        prediction and forecasting do not). Each group read is verified on its own: damage in
        a group left unread goes unnoticed by this read.
    sample_stats : bool, default True
        Read the sampler statistics (the diagnostics need them; prediction and forecasting
        do not: the fit's convergence report is a root attribute).
    derived : bool, default True
        Recompute the derived variables (``skills`` and ``mean_score`` of the fitted models:
        summaries and diagnostics read them; forecasting new families does not).

    Returns
    -------
    xarray.DataTree
        Fully loaded into memory (the file is closed).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    DataValidationError
        The file is not a readable netCDF file, not a sloth posterior, or of a newer format
        than this sloth reads; the message names the file.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no posterior file at {name!r}: fit and save one first")
    # unreadable bytes, or data that differ from the file's checksum: CorruptFileError
    skipped = [g for g, read in (("log_likelihood", log_likelihood),
                                 ("sample_stats", sample_stats)) if not read]
    groups = _groups_but(name, skipped) if skipped else None
    tree = open_datatree(name, what="posterior file", fix=_FIX, groups=groups)
    if "sloth_format" not in tree.attrs and "config" not in tree.attrs:
        raise _not_sloth(name, "it has no 'sloth_format' attribute")
    missing = [g for g in GROUPS if g not in tree.children]
    if missing:
        raise _not_sloth(name, f"it lacks the groups {missing}")
    try:
        version = format_version(tree)
    except DataValidationError as exc:
        raise _not_sloth(name, str(exc)) from None
    if version > FORMAT_VERSION:
        raise DataValidationError(f"{name!r} was {_too_new_message(tree, version)}")
    if version >= 2 and CHECKSUM_ATTR not in tree.attrs:
        raise CorruptFileError(
            f"{name!r} claims format version {version} but has no data checksum "
            f"({CHECKSUM_ATTR!r}): it was not written by sloth, or was edited. {_FIX}")
    try:
        tree = migrate(tree, version)
        missing = [a for a in REQUIRED_ATTRS if a not in tree.attrs]
        if missing:
            raise DataValidationError(f"it lacks the attributes {missing}")
        model_config(tree)
        sampler_config(tree)
    except DataValidationError as exc:
        raise _not_sloth(name, str(exc)) from None
    return with_derived(tree) if derived else tree


def tree_of(fitted: Any, what: str = "diagnose") -> tuple[xr.DataTree, Any, str]:
    """The posterior tree of a fit given as a SlothModel, a DataTree or a file path.

    The one resolver of the functions that take any of the three (``diagnose``,
    ``check_predictive``, ``analyze_skills``...).

    Parameters
    ----------
    fitted : SlothModel, xarray.DataTree, str or path-like
    what : str, default "diagnose"
        Names the caller in the error.

    Returns
    -------
    (xarray.DataTree, SlothModel or None, str)
        The tree, the model when one was given, and a label of the source.

    Raises
    ------
    TypeError
        For anything else (an unfitted model included).
    """
    if isinstance(fitted, xr.DataTree):
        return fitted, None, "<DataTree>"
    if isinstance(fitted, str | os.PathLike):
        return read_posterior(fitted), None, os.fspath(fitted)
    tree = getattr(fitted, "idata_", None)
    if isinstance(tree, xr.DataTree):
        return tree, fitted, "<model>"
    raise TypeError(
        f"{what} expects a fitted SlothModel, an xarray.DataTree or a posterior file path, "
        f"got {type(fitted).__name__}; fit a model first or load one with SlothModel.load(path)"
    )


def _groups_but(name: str, skipped: Sequence[str]) -> list[str] | None:
    """The file's groups but ``skipped`` (None: read all, e.g. an unreadable file, which the
    full read then reports)."""
    try:
        with h5py.File(name, "r") as handle:
            return [g for g in handle if isinstance(handle[g], h5py.Group)
                    and g not in skipped]
    except (OSError, ValueError):
        return None


def _not_sloth(name: str, reason: str) -> DataValidationError:
    return DataValidationError(f"{name!r} is not a sloth posterior file: {reason}. {_FIX}")
