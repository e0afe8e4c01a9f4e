"""Where sloth's public data files come from, and how to find them on this machine.

sloth never ships third-party data. Each file it can read is listed in :data:`DATA_FILES`
with a public address pinned to a commit and its SHA-256. :func:`resolve_data_file` looks for
a file, in this order:

1. an explicit ``path=`` argument;
2. ``$SLOTH_DATA_DIR/<name>`` (a local mirror, e.g. a shared folder; checksum-verified);
3. the user cache ``<cache>/<name>`` (checksum-verified), where ``<cache>`` is
   ``$SLOTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/sloth``, else ``~/.cache/sloth``;
4. a download from the pinned address into the cache (verified before it is kept).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from sloth.exceptions import ChecksumError, DataNotFoundError

__all__ = [
    "DATA_FILES",
    "DataFile",
    "cache_dir",
    "resolve_data_file",
    "sha256_file",
]

#: Environment variable naming a folder that mirrors the data layout (``<dir>/<name>``).
DATA_DIR_ENV = "SLOTH_DATA_DIR"
#: Environment variable overriding the download cache folder.
CACHE_DIR_ENV = "SLOTH_CACHE_DIR"

_DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """A public data file sloth knows how to fetch.

    Parameters
    ----------
    name : str
        Relative path, ``"<collection>/<file>"``; also its place under a data folder or cache.
    url : str
        Public address pinned to a commit.
    sha256 : str
        Hex SHA-256 of the file's bytes.
    source : str
        Repository and commit it comes from.
    licence : str
        Licence of the source repository.
    """

    name: str
    url: str
    sha256: str
    source: str
    licence: str


_SLOTH_REPO = "felipemaiapolo/sloth"
_SLOTH_COMMIT = "6dc6bb3efeefc7c1db01d60cba1f4b73e5d260d1"
_SLOTH_RAW = f"https://raw.githubusercontent.com/{_SLOTH_REPO}/{_SLOTH_COMMIT}/data/"
_OBS_REPO = "ryoungj/ObsScaling"
_OBS_COMMIT = "4d6e1e43fd2635d04654aa77d1df9d5266ea0382"
_OBS_RAW = f"https://raw.githubusercontent.com/{_OBS_REPO}/{_OBS_COMMIT}/eval_results/"
_CHIN_REPO = "epoch-research/analyzing-chinchilla"
_CHIN_COMMIT = "9225883"
_CHIN_RAW = f"https://raw.githubusercontent.com/{_CHIN_REPO}/{_CHIN_COMMIT}/data/"


def _sloth(file: str, sha256: str) -> DataFile:
    return DataFile(f"sloth-leaderboard/{file}", _SLOTH_RAW + file, sha256,
                    f"{_SLOTH_REPO}@{_SLOTH_COMMIT}", "MIT")


def _obs(file: str, sha256: str) -> DataFile:
    return DataFile(f"observational-scaling/{file}", _OBS_RAW + file, sha256,
                    f"{_OBS_REPO}@{_OBS_COMMIT}", "Apache-2.0")


def _chin(file: str, sha256: str) -> DataFile:
    return DataFile(f"chinchilla-epoch/{file}", _CHIN_RAW + file, sha256,
                    f"{_CHIN_REPO}@{_CHIN_COMMIT}", "none stated")


_FILES = [
    _sloth("data_v2.csv", "528d08d7bc04dc71a73d42ea0a1041396616505b53a140052828104afe0c6f39"),
    _sloth("data_v1.csv", "3394fce53c5b53dfa57691f6c4a01a5c977f74af09e619210e023e08184fb975"),
    _sloth("lower_bounds.csv",
           "cf89a9485fd2f8bd1194da6c301e85fc17a0f947fdea2d20dc554d8bbe44ac1d"),
    _sloth("open-llm-leaderboard_new.csv",
           "98b32f9859eed64b630468aa3a57fb971d1345ce69d0761f49990c6b6b96422d"),
    _sloth("open-llm-leaderboard_old.csv",
           "4fc6c5ff328753a1b4e5d1eac764eac127d4341d685e0615c3c399b879055f28"),
    _obs("base_llm_benchmark_eval.csv",
         "511996815735a4c46251dc585dcc525e370d148201f86561e6f927f9df2d0db8"),
    _obs("base_llm_leaderboard_v2_eval.csv",
         "ace728c962dfb2b9133fe92081c818e3fba01391694c9590fa0198f850062563"),
    _obs("instruct_llm_benchmark_eval.csv",
         "9bc50f327f4e436b15a6d6e3edb8b4837e726b295a1c72d44fadb9c9d25a75ba"),
    _chin("svg_extracted_data.csv",
          "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30"),
]

#: Every public file sloth can fetch, keyed by relative name. Mirrored in data/README.md.
DATA_FILES: dict[str, DataFile] = {f.name: f for f in _FILES}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The download cache: ``$SLOTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/sloth``, else
    ``~/.cache/sloth``. It is not created here."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sloth"


def _download(url: str, dest: Path) -> None:
    """Write the bytes at ``url`` to ``dest`` (tests replace this function)."""
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        with open(dest, "wb") as fh:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                fh.write(chunk)


def _verify(path: Path, entry: DataFile | None, where: str) -> Path:
    """Return ``path`` if its SHA-256 matches ``entry`` (files sloth does not know pass)."""
    if entry is None:
        return path
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path} ({where}) does not match the pinned checksum of {entry.name}: "
            f"expected SHA-256 {entry.sha256}, got {actual}. The file is damaged or a "
            f"different version; replace it with a copy of {entry.url}"
        )
    return path


def _not_found_message(name: str, entry: DataFile | None, reason: str) -> str:
    data_dir = os.environ.get(DATA_DIR_ENV)
    env_note = (f" (it is set to {data_dir!r}, which does not hold {name!r})"
                if data_dir else " (it is not set)")
    url = entry.url if entry is not None else "(no public address known for this file)"
    return (
        f"data file {name!r} not found: {reason}. Provide it in one of three ways: "
        f"(1) pass path='/path/to/{Path(name).name}'; "
        f"(2) set {DATA_DIR_ENV} to a folder holding {name!r}{env_note}; "
        f"(3) allow the download (download=True, needs network) or put the file at "
        f"{cache_dir() / name}. Public address: {url}"
    )


def _fetch(entry: DataFile, dest: Path) -> Path:
    """Download ``entry`` to ``dest`` via a verified temporary file and an atomic rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _download(entry.url, tmp)
        actual = sha256_file(tmp)
        if actual != entry.sha256:
            raise ChecksumError(
                f"download of {entry.name} from {entry.url} does not match the pinned "
                f"checksum: expected SHA-256 {entry.sha256}, got {actual}; the file was "
                f"not kept"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve_data_file(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> Path:
    """Local path of a data file, downloading it into the cache if needed.

    Parameters
    ----------
    name : str
        Relative name such as ``"sloth-leaderboard/data_v2.csv"`` (see :data:`DATA_FILES`).
    path : path-like, optional
        Explicit file to use; it must exist and is not checksum-verified (your own copy).
    download : bool
        Allow fetching from the public address when no local copy is found.

    Returns
    -------
    Path
        An existing file.

    Raises
    ------
    DataNotFoundError
        If ``path`` does not exist, or no copy is found and the download is off or fails.
    ChecksumError
        If a copy in ``$SLOTH_DATA_DIR`` or a download does not match the pinned SHA-256,
        or a cached copy does not and ``download=False``.
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise DataNotFoundError(f"data file {str(path)!r} (passed as path=) does not exist")
        return explicit

    entry = DATA_FILES.get(name)
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        candidate = Path(data_dir).expanduser() / name
        if candidate.is_file():
            return _verify(candidate, entry, f"found through {DATA_DIR_ENV}")

    cached = cache_dir() / name
    if cached.is_file():
        try:
            return _verify(cached, entry, "in the sloth cache")
        except ChecksumError:
            if not download:
                raise
            warnings.warn(f"cached {cached} is damaged; downloading it again", stacklevel=2)

    if entry is None:
        raise DataNotFoundError(_not_found_message(name, None, "sloth has no public source"))
    if not download:
        raise DataNotFoundError(_not_found_message(name, entry, "download=False"))
    try:
        return _fetch(entry, cached)
    except ChecksumError:
        raise
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, read-only cache
        raise DataNotFoundError(
            _not_found_message(name, entry, f"the download failed ({exc})")
        ) from exc
