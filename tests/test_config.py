"""``import sloth`` changes nothing in the process; :func:`sloth.configure` is the one place
that sets JAX's device count and compilation cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    clean["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), clean.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, **env}, cwd=REPO_ROOT, timeout=300, check=True)


def test_import_sloth_leaves_xla_flags_alone():
    out = _python("import os, sloth; print(os.environ.get('XLA_FLAGS'))")
    assert out.stdout.strip() == "None"


def test_importing_sloth_and_its_fitting_modules_leaves_jax_config_alone():
    code = """
import json, os
import jax
before = {k: repr(v) for k, v in jax.config.values.items()}
import sloth, sloth.estimator, sloth.inference, sloth.cli.main
sloth.SlothModel, sloth.load_leaderboard
after = {k: repr(v) for k, v in jax.config.values.items()}
print(json.dumps({"changed": sorted(k for k in after if before.get(k) != after[k]),
                  "xla_flags": os.environ.get("XLA_FLAGS")}))
"""
    result = json.loads(_python(code).stdout.strip().splitlines()[-1])
    assert result == {"changed": [], "xla_flags": None}


def test_configure_sets_devices_and_cache(tmp_path):
    code = f"""
import json, os, sloth
sloth.configure(host_devices=3, cache_dir={str(tmp_path / 'jax')!r})
import jax
print(json.dumps({{"devices": len(jax.devices("cpu")),
                  "cache": jax.config.values["jax_compilation_cache_dir"]}}))
"""
    result = json.loads(_python(code).stdout.strip().splitlines()[-1])
    assert result == {"devices": 3, "cache": str(tmp_path / "jax")}


def test_configure_after_jax_started_warns_clearly():
    code = """
import warnings, jax
jax.numpy.zeros(2).block_until_ready()   # JAX has started: one CPU device
import sloth
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sloth.configure(host_devices=7, compilation_cache=False)
print(len(jax.devices("cpu")))
print(" | ".join(str(w.message) for w in caught))
"""
    devices, message = _python(code).stdout.strip().splitlines()[-2:]
    assert devices == "1"
    assert "already started" in message and "before any JAX computation" in message


def test_configure_rejects_a_bad_device_count():
    import sloth

    with pytest.raises(ValueError, match="host_devices"):
        sloth.configure(host_devices=0, compilation_cache=False)
