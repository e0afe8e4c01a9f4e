"""Tests of sloth.io: atomic writes, no silent overwrite, checksummed netCDF files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sloth.exceptions import CorruptFileError, OutputExistsError
from sloth.io import (
    CHECKSUM_ATTR,
    atomic_write,
    data_checksum,
    node_checksums,
    open_datatree,
    refuse_overwrite,
    save_datatree,
    verify_checksum,
)

REPO = Path(__file__).resolve().parents[1]
PREVIOUS = b"the previous, good content\n" * 100


def _tree(seed: int = 0, draws: int = 500) -> xr.DataTree:
    """A small posterior-like tree: float32 draws, strings, NaN, booleans, attributes."""
    rng = np.random.default_rng(seed)
    benchmarks = ["MMLU", "ARC", "MATH Lvl 5"]
    posterior = xr.Dataset(
        {"loading": (("chain", "draw", "benchmark", "skill"),
                     rng.normal(size=(4, draws, 3, 2)).astype(np.float32)),
         "noise_df": (("chain", "draw"), rng.gamma(5.0, size=(4, draws)).astype(np.float32))},
        coords={"chain": np.arange(4), "draw": np.arange(draws), "benchmark": benchmarks,
                "skill": ["skill_1", "skill_2"]})
    constant = xr.Dataset(
        {"params": ("model", [1e9, 7e9]), "model_family": ("model", ["a", "bb"]),
         "scores": (("model", "benchmark"), [[0.3, np.nan, 0.1], [0.5, 0.4, np.nan]])},
        coords={"model": ["a-1b", "bb-7b"], "benchmark": benchmarks})
    stats = xr.Dataset({"diverging": (("chain", "draw"), rng.random((4, draws)) < 0.01),
                        "n_steps": (("chain", "draw"), rng.integers(1, 64, (4, draws)))})
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant,
                                  "sample_stats": stats})
    tree.attrs = {"config": '{"n_skills": 2}', "anchors": '["MMLU"]', "seconds": 1.5}
    return tree


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------ atomic_write


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(PREVIOUS)
    assert atomic_write(target, lambda p: p.write_bytes(b"new")) == target
    assert target.read_bytes() == b"new" and _temps(tmp_path) == []
    fresh = atomic_write(tmp_path / "fresh.bin", lambda p: p.write_bytes(b"x"))
    assert fresh.read_bytes() == b"x"


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_failed_write_keeps_previous_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "fit.nc"
    target.write_bytes(PREVIOUS)

    def write(temp: Path) -> None:
        temp.write_bytes(b"half a posterior")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert target.read_bytes() == PREVIOUS  # bit-identical
    assert _temps(tmp_path) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "out.nc", lambda p: None)


def _slow_writer(target: Path, started: Path) -> subprocess.Popen[bytes]:
    """A child process inside atomic_write: half the file written, then sleeping."""
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from sloth.io import atomic_write
        def write(temp):
            temp.write_bytes(b"partial" * 1000)
            Path({str(started)!r}).touch()
            time.sleep(60)
        atomic_write({str(target)!r}, write)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert child.poll() is None, child.stderr.read() if child.stderr else b""
        assert time.monotonic() < deadline, "the child never started writing"
        time.sleep(0.05)
    return child


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_writer_keeps_previous_file(tmp_path: Path, sig: signal.Signals) -> None:
    target = tmp_path / "fit.nc"
    target.write_bytes(PREVIOUS)
    child = _slow_writer(target, tmp_path / "started")
    assert len(_temps(tmp_path)) == 1  # the half-written temporary file
    child.send_signal(sig)
    assert child.wait(timeout=60) != 0
    assert target.read_bytes() == PREVIOUS
    if sig == signal.SIGINT:  # KeyboardInterrupt: the writer cleans up itself
        assert _temps(tmp_path) == []
    else:  # nothing runs after SIGKILL: the next write removes what the dead writer left
        assert len(_temps(tmp_path)) == 1
        atomic_write(target, lambda p: p.write_bytes(b"new"))
        assert _temps(tmp_path) == [] and target.read_bytes() == b"new"


def test_live_writers_temp_is_not_removed(tmp_path: Path) -> None:
    target = tmp_path / "fit.nc"
    other = tmp_path / f".fit.nc.{os.getppid()}.abcd.tmp"  # a running process's
    other.write_bytes(b"in progress")
    atomic_write(target, lambda p: p.write_bytes(b"new"))
    assert other.exists()


# -------------------------------------------------------------------- refuse_overwrite


def test_refuse_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    assert refuse_overwrite(target, force=False) == target  # nothing there yet
    target.write_text("my notes")
    with pytest.raises(OutputExistsError) as err:
        refuse_overwrite(target, force=False, what="--out")
    assert "--out" in str(err.value) and "notes.txt" in str(err.value)
    assert "--force" in str(err.value)
    with pytest.raises(OutputExistsError, match=r"overwrite=True"):
        refuse_overwrite(target, force=False, option="overwrite=True")
    assert isinstance(err.value, FileExistsError)
    assert refuse_overwrite(target, force=True) == target
    with pytest.raises(OutputExistsError, match="is a folder"):
        refuse_overwrite(tmp_path, force=True)
    assert target.read_text() == "my notes"


# --------------------------------------------------------------------------- checksums


def test_checksum_is_canonical_and_sensitive() -> None:
    tree = _tree()
    reference = data_checksum(tree)
    assert reference == data_checksum(_tree()) and len(reference) == 64
    assert data_checksum(tree.copy(deep=True)) == reference
    changed = _tree()
    changed["posterior"]["loading"].values[1, 2, 0, 1] += 1e-6
    assert data_checksum(changed) != reference
    renamed = _tree()
    renamed.attrs["anchors"] = '["ARC"]'
    assert data_checksum(renamed) != reference
    stamped = _tree()
    stamped.attrs[CHECKSUM_ATTR] = "anything"  # the checksum does not cover itself
    assert data_checksum(stamped) == reference
    with pytest.raises(CorruptFileError, match=r"fit\.nc"):
        verify_checksum(changed, reference, "fit.nc")


def test_save_and_open_round_trip(tmp_path: Path) -> None:
    tree = _tree()
    path = save_datatree(tree, tmp_path / "fit.nc")
    assert CHECKSUM_ATTR not in tree.attrs  # the caller's tree is not modified
    back = open_datatree(path, require_checksum=True)
    assert json.loads(back.attrs[CHECKSUM_ATTR]) == node_checksums(tree)
    assert data_checksum(back) == data_checksum(tree)
    xr.testing.assert_identical(back["posterior"].to_dataset(),
                                tree["posterior"].to_dataset())
    assert _temps(tmp_path) == []


def test_a_partial_read_verifies_the_groups_it_reads(tmp_path: Path) -> None:
    """Reading some groups verifies those alone: damage elsewhere goes unnoticed by design,
    damage in a group read is refused."""
    tree = _tree()
    path = save_datatree(tree, tmp_path / "fit.nc")
    groups = [g for g in tree.children][:1]
    part = open_datatree(path, require_checksum=True, groups=groups)
    assert list(part.children) == groups
    xr.testing.assert_identical(part[groups[0]].to_dataset(), tree[groups[0]].to_dataset())
    with pytest.raises(CorruptFileError, match="cannot be read"):
        open_datatree(path, groups=["no_such_group"])
    edited = open_datatree(path)
    first = edited[groups[0]].to_dataset()
    name = next(iter(first.data_vars))
    edited[groups[0]] = xr.DataTree(first.assign({name: first[name] * 2}))
    edited.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")  # keeps the old checksums
    with pytest.raises(CorruptFileError, match=f"group '/{groups[0]}'"):
        open_datatree(tmp_path / "edited.nc", groups=groups)


def test_save_failure_keeps_previous_posterior(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_datatree(_tree(seed=1), tmp_path / "fit.nc")
    before = path.read_bytes()

    def full_disk(self: xr.DataTree, *args: object, **kwargs: object) -> None:
        Path(str(args[0])).write_bytes(b"\x89HDF partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_datatree(_tree(seed=2), path)
    assert path.read_bytes() == before and _temps(tmp_path) == []
    monkeypatch.undo()
    open_datatree(path, require_checksum=True)


def _damaged(path: Path, how: str, rng: np.random.Generator) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    if how == "flip":
        at = rng.integers(len(data) // 4, 3 * len(data) // 4, size=8)
        for i in at:
            data[i] ^= 0xFF
    elif how == "zero":
        data[middle - 4096: middle + 4096] = bytes(8192)
    else:  # truncate
        del data[middle:]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("how", "seed"), [("flip", s) for s in range(6)]
                         + [("zero", 0), ("truncate", 0)])
def test_corrupted_file_is_refused(tmp_path: Path, how: str, seed: int) -> None:
    """Bytes changed in the middle: unreadable, or refused by the checksum, by name."""
    path = save_datatree(_tree(), tmp_path / "fit.nc")
    _damaged(path, how, np.random.default_rng(seed))
    with pytest.raises(CorruptFileError, match=r"fit\.nc"):
        open_datatree(path, what="posterior file")


def test_files_not_written_by_sloth(tmp_path: Path) -> None:
    plain = tmp_path / "plain.nc"
    _tree().to_netcdf(plain, engine="h5netcdf")  # a valid netCDF file without a checksum
    assert CHECKSUM_ATTR not in open_datatree(plain).attrs
    with pytest.raises(CorruptFileError, match=r"plain\.nc.*no data checksum"):
        open_datatree(plain, require_checksum=True)
    text = tmp_path / "notes.nc"
    text.write_text("not a netCDF file")
    with pytest.raises(CorruptFileError, match=r"notes\.nc.*cannot be read"):
        open_datatree(text)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_datatree(tmp_path / "nowhere.nc")
