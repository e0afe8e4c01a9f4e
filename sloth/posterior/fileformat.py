"""The posterior file: a netCDF file (h5netcdf) of the fit's ``xarray.DataTree``, no pickle."""

from __future__ import annotations

import os

import xarray as xr

from sloth.exceptions import DataValidationError


def write_posterior(tree: xr.DataTree, path: str | os.PathLike) -> None:
    """Write a posterior tree to ``path`` (netCDF through h5netcdf)."""
    tree.to_netcdf(os.fspath(path), engine="h5netcdf")


def read_posterior(path: str | os.PathLike) -> xr.DataTree:
    """Read a posterior tree written by :func:`write_posterior`, fully loaded into memory.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    DataValidationError
        The file is not a sloth posterior file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no posterior file at {path!r}: fit and save one first")
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    tree.close()
    if "config" not in tree.attrs:
        raise DataValidationError(f"{path!r} is not a sloth posterior file (no config)")
    return tree
