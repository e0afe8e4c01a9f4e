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
from collections.abc import Callable, Iterator
from pathlib import Path

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


def data_checksum(tree: xr.DataTree) -> str:
    """SHA-256 of a DataTree's content, independent of how a file lays it out.

    Every node (by path), its attributes (but :data:`CHECKSUM_ATTR`) and every variable of
    its own (data variables and coordinates, by name) enter in sorted order, each variable
    with its dimensions, shape, dtype and values.

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
    for node in sorted(tree.subtree, key=lambda n: n.path):
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


def verify_checksum(tree: xr.DataTree, expected: str, path: str | os.PathLike[str]) -> None:
    """Raise unless ``tree``'s :func:`data_checksum` is ``expected``.

    Raises
    ------
    CorruptFileError
        Naming ``path``: its data were changed after sloth wrote it.
    """
    actual = data_checksum(tree)
    if actual != expected:
        raise CorruptFileError(
            f"{str(path)!r} is corrupted: the checksum of its data ({actual[:12]}...) differs "
            f"from the one written with it ({str(expected)[:12]}...), so some of its bytes "
            f"changed after sloth saved it. Fix: use another copy of the file, or write it "
            f"again")


# ------------------------------------------------------------------------ netCDF files


#: The fix proposed for an unreadable or corrupted file, unless the caller gives its own.
REWRITE_FIX = "Fix: use another copy of the file, or write it again"


def _read_tree(path: Path, what: str, fix: str = REWRITE_FIX) -> xr.DataTree:
    """The whole DataTree of a netCDF file, loaded and closed; unreadable -> CorruptFileError."""
    try:
        with xr.open_datatree(path, engine="h5netcdf") as lazy:
            return lazy.load()
    except Exception as exc:  # h5py, h5netcdf and xarray raise many kinds on a bad file
        raise CorruptFileError(
            f"{what} {str(path)!r} cannot be read as a netCDF file ({type(exc).__name__}): "
            f"it is truncated, corrupted, or not a file sloth wrote. {fix}") from None


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
    stamped.attrs = {**tree.attrs, CHECKSUM_ATTR: data_checksum(tree)}

    def write(temp: Path) -> None:
        stamped.to_netcdf(temp, engine="h5netcdf")
        verify_checksum(_read_tree(temp, "the file just written"),
                        stamped.attrs[CHECKSUM_ATTR], path)

    return atomic_write(path, write)


def open_datatree(path: str | os.PathLike[str], *, require_checksum: bool = False,
                  what: str = "file", fix: str = REWRITE_FIX) -> xr.DataTree:
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
    tree = _read_tree(source, what, fix)
    expected = tree.attrs.get(CHECKSUM_ATTR)
    if expected is None:
        if require_checksum:
            raise CorruptFileError(
                f"{what} {str(path)!r} has no data checksum ({CHECKSUM_ATTR!r}): it was not "
                f"written by this version of sloth. Fix: write it again with sloth")
        return tree
    verify_checksum(tree, str(expected), path)
    return tree
