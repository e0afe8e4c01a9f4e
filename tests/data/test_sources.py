"""Tests of sloth.data.sources (no network: the downloader is replaced)."""

from __future__ import annotations

import hashlib
import re
import urllib.error
from pathlib import Path

import pytest

from sloth.data import sources
from sloth.data.sources import DATA_FILES, DataFile, cache_dir, resolve_data_file, sha256_file
from sloth.exceptions import ChecksumError, DataNotFoundError

REAL_DOWNLOAD = sources._download  # captured before the autouse fixture replaces it
README = Path(__file__).resolve().parents[2] / "data" / "README.md"
NAME = "test-collection/scores.csv"
PAYLOAD = b"model,score\na,0.5\n"
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
URL = "https://example.invalid/scores.csv"


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> DataFile:
    """A known data file whose pinned checksum is that of PAYLOAD."""
    item = DataFile(NAME, URL, DIGEST, "example/repo@abc", "MIT")
    monkeypatch.setitem(DATA_FILES, NAME, item)
    return item


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Serve PAYLOAD for any URL; the returned list records the URLs fetched."""
    calls: list[str] = []

    def fake_download(url: str, dest: Path) -> None:
        calls.append(url)
        Path(dest).write_bytes(PAYLOAD)

    monkeypatch.setattr(sources, "_download", fake_download)
    return calls


def _write(path: Path, data: bytes = PAYLOAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_sha256_file(tmp_path: Path) -> None:
    assert sha256_file(_write(tmp_path / "f")) == DIGEST


def test_data_files_registry() -> None:
    assert len(DATA_FILES) == 9
    for name, item in DATA_FILES.items():
        assert item.name == name
        assert re.fullmatch(r"[0-9a-f]{64}", item.sha256)
        assert item.url.startswith("https://raw.githubusercontent.com/")
        assert item.url.endswith("/" + name.split("/", 1)[1])
    lb = DATA_FILES["sloth-leaderboard/data_v2.csv"]
    assert "6dc6bb3efeefc7c1db01d60cba1f4b73e5d260d1" in lb.url
    assert lb.sha256.startswith("528d08d7")


def test_readme_table_matches_data_files() -> None:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[0-9a-f]{64}", cells[2]):
            rows[cells[0]] = (cells[1], cells[2])
    assert rows == {n: (f.url, f.sha256) for n, f in DATA_FILES.items()}


def test_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            entry: DataFile) -> None:
    own = _write(tmp_path / "mine.csv", b"my own version")
    _write(tmp_path / "mirror" / NAME)
    monkeypatch.setenv("SLOTH_DATA_DIR", str(tmp_path / "mirror"))
    assert resolve_data_file(NAME, own) == own  # not checksum-verified: user's copy


def test_explicit_path_missing_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataNotFoundError, match=re.escape(str(missing))):
        resolve_data_file(NAME, missing)


def test_data_dir_found_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     entry: DataFile) -> None:
    mirrored = _write(tmp_path / "mirror" / NAME)
    _write(cache_dir() / NAME)
    monkeypatch.setenv("SLOTH_DATA_DIR", str(tmp_path / "mirror"))
    assert resolve_data_file(NAME) == mirrored


def test_data_dir_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    entry: DataFile) -> None:
    bad = _write(tmp_path / "mirror" / NAME, b"tampered")
    monkeypatch.setenv("SLOTH_DATA_DIR", str(tmp_path / "mirror"))
    with pytest.raises(ChecksumError) as err:
        resolve_data_file(NAME)
    msg = str(err.value)
    assert str(bad) in msg and "SLOTH_DATA_DIR" in msg
    assert DIGEST in msg and hashlib.sha256(b"tampered").hexdigest() in msg


def test_data_dir_without_file_falls_back_to_cache(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   entry: DataFile) -> None:
    (tmp_path / "mirror").mkdir()
    cached = _write(cache_dir() / NAME)
    monkeypatch.setenv("SLOTH_DATA_DIR", str(tmp_path / "mirror"))
    assert resolve_data_file(NAME) == cached


def test_cache_hit_does_not_download(entry: DataFile, served: list[str]) -> None:
    cached = _write(cache_dir() / NAME)
    assert resolve_data_file(NAME) == cached
    assert served == []


def test_download_to_cache_then_cache_hit(entry: DataFile, served: list[str]) -> None:
    first = resolve_data_file(NAME)
    assert first == cache_dir() / NAME
    assert first.read_bytes() == PAYLOAD
    assert served == [URL]
    assert resolve_data_file(NAME) == first
    assert served == [URL]  # second call served from the cache
    assert [p.name for p in first.parent.iterdir()] == ["scores.csv"]  # no temp file left


def test_download_checksum_mismatch_keeps_nothing(monkeypatch: pytest.MonkeyPatch,
                                                  entry: DataFile) -> None:
    monkeypatch.setattr(sources, "_download", lambda url, dest: Path(dest).write_bytes(b"evil"))
    with pytest.raises(ChecksumError) as err:
        resolve_data_file(NAME)
    assert URL in str(err.value) and DIGEST in str(err.value)
    folder = cache_dir() / NAME.split("/")[0]
    assert not (cache_dir() / NAME).exists()
    assert list(folder.iterdir()) == []


def test_damaged_cache_offline_raises_checksum(entry: DataFile) -> None:
    _write(cache_dir() / NAME, b"damaged")
    with pytest.raises(ChecksumError, match="sloth cache"):
        resolve_data_file(NAME, download=False)


def test_damaged_cache_is_downloaded_again(entry: DataFile, served: list[str]) -> None:
    _write(cache_dir() / NAME, b"damaged")
    with pytest.warns(UserWarning, match="damaged"):
        path = resolve_data_file(NAME)
    assert path.read_bytes() == PAYLOAD and served == [URL]


def _assert_three_ways(msg: str) -> None:
    assert NAME in msg
    assert "path=" in msg
    assert "SLOTH_DATA_DIR" in msg
    assert "download=True" in msg and str(cache_dir() / NAME) in msg
    assert URL in msg


def test_offline_error_names_three_ways(entry: DataFile) -> None:
    with pytest.raises(DataNotFoundError) as err:
        resolve_data_file(NAME, download=False)
    _assert_three_ways(str(err.value))
    assert "not set" in str(err.value)


def test_failed_download_gives_same_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          entry: DataFile) -> None:
    def offline(url: str, dest: Path) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(sources, "_download", offline)
    monkeypatch.setenv("SLOTH_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError) as err:
        resolve_data_file(NAME)
    msg = str(err.value)
    _assert_three_ways(msg)
    assert "no route to host" in msg and str(tmp_path / "empty") in msg
    assert list((cache_dir() / NAME).parent.iterdir()) == []


def test_unknown_file_without_local_copy() -> None:
    with pytest.raises(DataNotFoundError, match="no public source"):
        resolve_data_file("unknown/file.csv")


def test_real_downloader_reads_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    origin = _write(tmp_path / "origin.csv")
    monkeypatch.setitem(DATA_FILES, NAME, DataFile(NAME, origin.as_uri(), DIGEST, "x", "MIT"))
    monkeypatch.setattr(sources, "_download", REAL_DOWNLOAD)
    assert resolve_data_file(NAME).read_bytes() == PAYLOAD


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLOTH_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SLOTH_CACHE_DIR")
    assert cache_dir() == tmp_path / "b" / "sloth"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "sloth"


def test_reference_files_match_pinned_checksums(shared_data: Path) -> None:
    for name in DATA_FILES:
        if (shared_data / name).is_file():
            assert resolve_data_file(name, download=False) == shared_data / name
