"""Session-wide test settings.

- ``SLOTH_DATA_DIR`` points at ``../shared/data`` (beside the repository) when that folder
  exists and the variable is not already set, so tests that need the reference data find it
  without a download. ``tests/data/conftest.py`` unsets it for the data-loading tests, which
  manage it themselves.
- Matplotlib draws with the non-interactive Agg backend (set in this process only, so
  notebook kernels started by the tests keep their own inline backend).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

if SHARED_DATA.is_dir() and not os.environ.get("SLOTH_DATA_DIR"):
    os.environ["SLOTH_DATA_DIR"] = str(SHARED_DATA)

try:
    import matplotlib
except ImportError:  # pragma: no cover - matplotlib is a dependency
    pass
else:
    matplotlib.use("Agg", force=True)
