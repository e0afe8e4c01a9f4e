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


_TRACED = """
import json, sys, warnings
import jax, jax.numpy as jnp, numpy as np, sloth
from sloth.config import persistent_program
if sys.argv[1] != "none":
    sloth.configure(cache_dir=sys.argv[1])
traced = []

def f(x, y):
    traced.append(1)  # runs when JAX traces f, not when a kept program runs
    return jnp.sin(x) @ y, jnp.cumsum(y * 2)

x = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
y = np.arange(3, dtype=np.float32)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    call = persistent_program(jax.jit(f), "test-f")
    first = [np.asarray(a).tolist() for a in call(x, y)]
    again = [np.asarray(a).tolist() for a in call(x, y)]
kept = len(traced)
direct = [np.asarray(a).tolist() for a in jax.jit(f)(x, y)]
print(json.dumps({"traced": kept, "same": first == direct == again,
                  "warnings": [str(w.message) for w in caught]}))
"""


def _run_traced(folder: str) -> dict:
    return json.loads(_python(_TRACED.replace("sys.argv[1]", repr(folder))
                              ).stdout.strip().splitlines()[-1])


def test_persistent_program_traces_once_across_processes(tmp_path):
    """The first process traces and keeps the program; the next one runs it untraced, with
    the same results as the plain jitted function; a damaged file is traced again."""
    cache = tmp_path / "jax"
    first = _run_traced(str(cache))
    assert first == {"traced": 1, "same": True, "warnings": []}
    kept = list((cache / "sloth-exported").glob("test-f-*.jaxexport"))
    assert len(kept) == 1
    assert _run_traced(str(cache)) == {"traced": 0, "same": True, "warnings": []}
    kept[0].write_bytes(b"damaged")
    damaged = _run_traced(str(cache))
    assert damaged["traced"] == 1 and damaged["same"]
    assert any("cannot be used" in w and "tracing it again" in w for w in damaged["warnings"])
    assert kept[0].read_bytes() != b"damaged"  # replaced by the new trace
    assert _run_traced(str(cache))["traced"] == 0


def test_persistent_program_without_a_compilation_cache_writes_nothing(tmp_path):
    out = _run_traced("none")
    assert out == {"traced": 1, "same": True, "warnings": []}
    assert not list(tmp_path.rglob("*.jaxexport"))


def test_a_forecast_does_not_import_arviz_stats():
    """The command line, the estimator and the forecast import neither arviz_stats nor
    scipy.stats (about a second of every forecast): the diagnostics and the conditioning of
    a family on its observed models import them where they run."""
    code = """
import json, sys
import sloth.cli.main, sloth.cli.forecast, sloth.estimator, sloth.forecast, sloth.conditioning
import sloth.checks
before = sorted(m for m in ("arviz_stats", "scipy.stats") if m in sys.modules)
sloth.checks.convergence.ConvergenceStats  # the checks are there, arviz_stats on use
print(json.dumps(before))
"""
    assert json.loads(_python(code).stdout.strip().splitlines()[-1]) == []
