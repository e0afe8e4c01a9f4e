"""The user cache of default fits: one posterior file per (data, configuration, sloth version).

``sloth forecast`` without ``--posterior`` forecasts from the default fit of the default
data; the first call fits it and keeps the posterior here, later calls read it. A cache entry
is keyed by a checksum of the data, the estimator's configuration and sloth's version, so a
new release, another table or another setting never reuses a stale fit. ``sloth cache``
lists and clears the entries. The folder is the download cache's
(:func:`sloth.data.sources.cache_dir`), under ``fits/``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sloth import __version__
from sloth.data.sources import cache_dir
from sloth.data.table import ScoreTable
from sloth.io import atomic_write

__all__ = ["CacheEntry", "cached_fit_path", "clear_cache", "fit_key", "fits_dir",
           "list_cache"]

#: Sub-folders of the cache and what they hold.
CACHE_PARTS = {"fits": "default fits (posterior files)", "jax": "compiled JAX programs"}


def fits_dir() -> Path:
    """Where cached fits live: ``<cache>/fits``."""
    return cache_dir() / "fits"


def table_checksum(table: ScoreTable) -> str:
    """SHA-256 of a table's content: names, families, sizes, tokens, floors, scores and
    extra covariates, in order."""
    digest = hashlib.sha256()
    for part in (table.models, table.family, table.benchmarks):
        digest.update(json.dumps(list(part)).encode())
    for array in (table.params, table.tokens, table.floors, table.scores):
        digest.update(np.ascontiguousarray(np.asarray(array, dtype=np.float64)).tobytes())
    for name in sorted(table.extra_covariates):
        digest.update(name.encode())
        digest.update(np.asarray(table.extra_covariates[name], dtype=np.float64).tobytes())
    return digest.hexdigest()


def fit_key(table: ScoreTable, config: dict[str, Any]) -> str:
    """The cache key of a fit: data checksum, configuration and sloth version (hex, 24)."""
    payload = json.dumps({"data": table_checksum(table), "config": config,
                          "sloth": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cached_fit_path(table: ScoreTable, config: dict[str, Any], fit: Callable[[Path], None],
                    *, description: str = "") -> tuple[Path, bool]:
    """The cached posterior of ``table`` under ``config``, fitted and kept if missing.

    Parameters
    ----------
    table : ScoreTable
    config : dict
        The estimator's configuration (:meth:`sloth.SlothModel.get_config`).
    fit : callable
        ``fit(path)`` fits the model and saves its posterior to ``path``.
    description : str
        What the entry holds, shown by ``sloth cache``.

    Returns
    -------
    path : Path
    fitted : bool
        Whether this call fitted it (False: it was in the cache).
    """
    key = fit_key(table, config)
    folder = fits_dir()
    path = folder / f"{key}.nc"
    if path.is_file():
        return path, False
    folder.mkdir(parents=True, exist_ok=True)
    fit(path)
    meta = {"key": key, "description": description, "sloth": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "n_models": table.n_models, "benchmarks": list(table.benchmarks)}
    atomic_write(path.with_suffix(".json"),
                 lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))
    return path, True


@dataclass(frozen=True)
class CacheEntry:
    """One entry of the cache: a fit, or a folder of another kind."""

    kind: str
    path: Path
    bytes: int
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "bytes": self.bytes,
                "description": self.description}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_cache() -> list[CacheEntry]:
    """The cached fits (one entry each) and the other parts of the cache that exist."""
    entries = []
    folder = fits_dir()
    for path in sorted(folder.glob("*.nc")) if folder.is_dir() else []:
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        except (OSError, ValueError):
            meta = {}
        text = meta.get("description") or "a fit"
        if meta.get("created"):
            text += f" (sloth {meta.get('sloth', '?')}, {meta['created']})"
        entries.append(CacheEntry("fit", path, _size(path), text))
    for part, what in CACHE_PARTS.items():
        path = cache_dir() / part
        if part != "fits" and path.is_dir():
            entries.append(CacheEntry(part, path, _size(path), what))
    return entries


def clear_cache(parts: tuple[str, ...] = ("fits",)) -> list[Path]:
    """Remove parts of the cache (``"fits"``, ``"jax"``); downloaded data are kept.

    Returns
    -------
    list of Path
        What was removed.
    """
    unknown = [p for p in parts if p not in CACHE_PARTS]
    if unknown:
        raise ValueError(f"cache parts {unknown}: allowed values are {sorted(CACHE_PARTS)}")
    removed = []
    for part in parts:
        path = cache_dir() / part
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path)
    return removed
