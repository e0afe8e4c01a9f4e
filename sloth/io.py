"""Files that are never half-written, never silently replaced, and checked when read back.

- :func:`atomic_write` — write through a temporary file in the target's folder, ``fsync``,
  then ``os.replace``: on any failure or interrupt the previous file is left as it was.
- :func:`refuse_overwrite` — refuse an existing output unless the caller said so.
- :func:`data_checksum` / :func:`verify_checksum` — a SHA-256 of a DataTree's data, stored
  in the file's attributes by :func:`save_datatree` and checked by :func:`open_datatree`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sloth.exceptions import CorruptFileError, OutputExistsError

__all__ = [
    "CHECKSUM_ATTR",
    "atomic_write",
    "data_checksum",
    "open_datatree",
    "refuse_overwrite",
    "save_datatree",
    "verify_checksum",
]

#: Root attribute of a netCDF file that holds :func:`data_checksum` of its data.
CHECKSUM_ATTR = "sloth_data_sha256"
_TEMP_SUFFIX = ".tmp"


# ------------------------------------------------------------------------ atomic writes


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _new_temp(target: Path) -> Path:
    """Create an empty, uniquely named temporary file next to ``target``.

    Its name, ``.<name>.<pid>.<random>.tmp``, carries the writer's process id so that a
    later write can remove it if that process died without cleaning up (e.g. SIGKILL).
    """
    while True:
        temp = target.with_name(
            f"{_temp_prefix(target)}{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _stale_temps(target: Path) -> Iterator[Path]:
    """Temporary files of ``target`` left by writers that no longer run."""
    prefix = _temp_prefix(target)
    for entry in target.parent.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_TEMP_SUFFIX)):
            continue
        pid = name[len(prefix):-len(_TEMP_SUFFIX)].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            yield entry


def _fsync(path: Path) -> None:
    """Flush a file or a folder to disk (folders: where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():  # e.g. Windows cannot open folders
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Write a file so that it is either wholly replaced or left as it was.

    ``write`` is called with the path of a new, empty temporary file in the target's folder;
    the file is then flushed to disk (``fsync``) and renamed over the target with
    :func:`os.replace`, and the folder is flushed too. If ``write`` (or anything after it)
    raises, including ``KeyboardInterrupt``, the temporary file is removed and the previous
    file at ``path``, if any, is untouched. Temporary files of writers that were killed
    (SIGKILL) are removed by the next write to the same target.

    Parameters
    ----------
    path : path-like
        The file to write. Its folder must exist.
    write : callable
        ``write(temporary_path)`` writes the whole content to that path.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileNotFoundError
        If the target's folder does not exist.
    """
    target = Path(path).expanduser()
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not "
                                f"exist. Fix: create it or choose another path")
    for stale in _stale_temps(target):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    temp = _new_temp(target)
    try:
        write(temp)
        _fsync(temp)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync(folder)
    return target


def refuse_overwrite(path: str | os.PathLike[str], force: bool, *, option: str = "--force",
                     what: str = "output file") -> Path:
    """Raise unless ``path`` can be written without silently replacing a file.

    Parameters
    ----------
    path : path-like
    force : bool
        Whether the caller asked to replace an existing file.
    option : str
        How the caller asks for it: ``"--force"`` on the command line, ``"overwrite=True"``
        in Python.
    what : str
        How the message names the file, e.g. ``"--out"``.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    OutputExistsError
        If ``path`` is a folder, or an existing file and ``force`` is false.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputExistsError(f"{what} {str(path)!r} is a folder. Fix: give a file name, "
                                f"e.g. {str(target / 'out.nc')!r}")
    if target.exists() and not force:
        raise OutputExistsError(
            f"{what} {str(path)!r} already exists and sloth does not overwrite files "
            f"silently. Fix: pass {option} to replace it, or choose another path")
    return target


# ---------------------------------------------------------------------------- checksums

#: The fix proposed for an unreadable or corrupted file, unless the caller gives its own.
REWRITE_FIX = "Fix: use another copy of the file, or write it again"

#: Arrays larger than this many elements are written compressed (gzip level 1, shuffled:
#: fast to read; posterior draws shrink by about a sixth).
COMPRESS_ABOVE = 10_000


def _field(*parts: str | bytes) -> bytes:
    """Length-prefixed fields, so that no two different records hash the same."""
    out = b""
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        out += len(data).to_bytes(8, "little") + data
    return out


def _canonical_attr(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(np.asarray(value).tolist(), sort_keys=True, default=str)


def _canonical_values(values: np.ndarray) -> tuple[str, bytes]:
    """A dtype tag and bytes of an array that survive a netCDF round trip unchanged.

    Strings (fixed-width, bytes or object) are hashed as their UTF-8 text; numbers and
    booleans as little-endian bytes of their dtype.
    """
    if values.dtype.kind in "USO":
        items = [v.decode("utf-8") if isinstance(v, bytes) else str(v)
                 for v in values.reshape(-1).tolist()]
        return "str", _field(*items)
    dtype = values.dtype.newbyteorder("<")
    return dtype.str, np.ascontiguousarray(values, dtype=dtype).tobytes()


def node_checksum(node: xr.DataTree) -> str:
    """SHA-256 of one node of a DataTree: its path, its attributes (but
    :data:`CHECKSUM_ATTR`) and its own variables (data variables and coordinates, by name,
    each with its dimensions, shape, dtype and values), in sorted order.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    digest.update(_field("node", node.path))
    for key in sorted(k for k in node.attrs if k != CHECKSUM_ATTR):
        digest.update(_field("attr", str(key), _canonical_attr(node.attrs[key])))
    own = node.to_dataset(inherit=False)
    for name in sorted(map(str, own.variables)):
        variable = own.variables[name]
        tag, data = _canonical_values(np.asarray(variable.values))
        digest.update(_field("var", name, json.dumps(list(map(str, variable.dims))),
                             json.dumps(list(variable.shape)), tag, data))
    return digest.hexdigest()


def node_checksums(tree: xr.DataTree) -> dict[str, str]:
    """:func:`node_checksum` of every node, by path: a file's groups can then be read and
    verified one at a time (a forecast needs neither the pointwise log-likelihood nor the
    sampler statistics)."""
    return {node.path: node_checksum(node) for node in tree.subtree}


def data_checksum(tree: xr.DataTree) -> str:
    """SHA-256 of a DataTree's content, independent of how a file lays it out: the
    :func:`node_checksums` of all its nodes, in path order.

    Parameters
    ----------
    tree : DataTree
        Loaded or lazy (variables are read).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    for path, value in sorted(node_checksums(tree).items()):
        digest.update(_field(path, value))
    return digest.hexdigest()


def verify_checksum(tree: xr.DataTree, expected: str, path: str | os.PathLike[str]) -> None:
    """Raise unless every node of ``tree`` has the checksum ``expected`` records for it.

    Parameters
    ----------
    tree : DataTree
        All the groups of a file, or some of them (a partial read).
    expected : str
        The :data:`CHECKSUM_ATTR` of the file: JSON of :func:`node_checksums`.
    path : path-like
        The file, for the message.

    Raises
    ------
    CorruptFileError
        Naming ``path``: its data were changed after sloth wrote it.
    """
    try:
        recorded = json.loads(expected)
    except (TypeError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        raise CorruptFileError(
            f"{str(path)!r} is corrupted: its checksum attribute {CHECKSUM_ATTR!r} is not the "
            f"record sloth writes. {REWRITE_FIX}")
    for node in tree.subtree:
        actual = node_checksum(node)
        if recorded.get(node.path) != actual:
            raise CorruptFileError(
                f"{str(path)!r} is corrupted: the checksum of its group {node.path!r} "
                f"({actual[:12]}...) differs from the one written with it "
                f"({str(recorded.get(node.path))[:12]}...), so some of its bytes changed "
                f"after sloth saved it. {REWRITE_FIX}")


# ------------------------------------------------------------------------ netCDF files


def _read_tree(path: Path, what: str, fix: str = REWRITE_FIX,
               groups: Sequence[str] | None = None) -> xr.DataTree:
    """The DataTree of a netCDF file (or its root and ``groups`` only), loaded and closed;
    unreadable -> CorruptFileError."""
    try:
        with xr.open_datatree(path, engine="h5netcdf") as lazy:
            if groups is None:
                return lazy.load()
            missing = [g for g in groups if g not in lazy.children]
            if missing:
                raise KeyError(f"no groups {missing}")
            parts = {"/": lazy.to_dataset(inherit=False)}
            parts.update({f"/{g}": lazy[g].to_dataset(inherit=False) for g in groups})
            return xr.DataTree.from_dict(parts).load()
    except Exception as exc:  # h5py, h5netcdf and xarray raise many kinds on a bad file
        raise CorruptFileError(
            f"{what} {str(path)!r} cannot be read as a netCDF file ({type(exc).__name__}): "
            f"it is truncated, corrupted, or not a file sloth wrote. {fix}") from None


def _encoding(tree: xr.DataTree) -> dict[str, dict[str, dict[str, Any]]]:
    """Compression of every large numeric variable, by group path."""
    out = {}
    for node in tree.subtree:
        own = node.to_dataset(inherit=False)
        chosen = {name: {"compression": "gzip", "compression_opts": 1, "shuffle": True}
                  for name, var in own.data_vars.items()
                  if var.size > COMPRESS_ABOVE and var.dtype.kind in "fiub"}
        if chosen:
            out[node.path] = chosen
    return out


def save_datatree(tree: xr.DataTree, path: str | os.PathLike[str]) -> Path:
    """Write ``tree`` to a netCDF file (h5netcdf) atomically, with its data checksum.

    The checksum is stored in the root attribute :data:`CHECKSUM_ATTR`; the temporary file
    is read back and verified before it replaces ``path`` (see :func:`atomic_write`).
    ``tree`` itself is not modified.

    Returns
    -------
    Path
        The written file.
    """
    stamped = tree.copy()
    stamped.attrs = {**tree.attrs, CHECKSUM_ATTR: json.dumps(node_checksums(tree))}

    def write(temp: Path) -> None:
        stamped.to_netcdf(temp, engine="h5netcdf", encoding=_encoding(stamped))
        verify_checksum(_read_tree(temp, "the file just written"),
                        stamped.attrs[CHECKSUM_ATTR], path)

    return atomic_write(path, write)


def open_datatree(path: str | os.PathLike[str], *, require_checksum: bool = False,
                  what: str = "file", fix: str = REWRITE_FIX,
                  groups: Sequence[str] | None = None) -> xr.DataTree:
    """Read a netCDF file written by :func:`save_datatree`, verifying its data.

    Parameters
    ----------
    path : path-like
    require_checksum : bool
        Refuse a file without :data:`CHECKSUM_ATTR` (else such a file, e.g. one written
        before checksums, is returned unverified).
    what : str
        How messages name the file, e.g. ``"posterior file"``.
    fix : str
        The fix the messages propose (default: another copy, or writing it again).
    groups : sequence of str, optional
        Read only the root and these groups (each verified on its own); default: all.

    Returns
    -------
    DataTree
        Loaded into memory; the file is closed.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    CorruptFileError
        If the file cannot be read, lacks a required checksum, or its data differ from it.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"no {what} at {str(path)!r}. Fix: check the path")
    tree = _read_tree(source, what, fix, groups)
    expected = tree.attrs.get(CHECKSUM_ATTR)
    if expected is None:
        if require_checksum:
            raise CorruptFileError(
                f"{what} {str(path)!r} has no data checksum ({CHECKSUM_ATTR!r}): it was not "
                f"written by this version of sloth. Fix: write it again with sloth")
        return tree
    verify_checksum(tree, str(expected), path)
    return tree
