"""Fixtures of the data tests: no network, no user cache, no ambient SLOTH_DATA_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloth.data import sources

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LEADERBOARD = SHARED_DATA / "sloth-leaderboard" / "data_v2.csv"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the cache at a temporary folder and make any download attempt fail loudly."""
    monkeypatch.delenv("SLOTH_DATA_DIR", raising=False)
    monkeypatch.setenv("SLOTH_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(url: str, dest: Path) -> None:
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(sources, "_download", no_network)


@pytest.fixture
def shared_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """SLOTH_DATA_DIR set to the reference data folder; skip if it is absent."""
    if not LEADERBOARD.is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    monkeypatch.setenv("SLOTH_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA
