"""Process-wide settings of JAX that sloth benefits from, applied only on request.

``import sloth`` changes nothing in the process. The command line calls :func:`configure`
once at start; a notebook or script may call it first thing, before any JAX computation.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

__all__ = ["configure", "default_host_devices"]

#: Compiles shorter than this (seconds) are not written to the persistent cache.
MIN_CACHED_COMPILE_SECONDS = 0.2


def default_host_devices() -> int:
    """CPU devices the command line asks for: ``max(4, cpu_count)``, so that four NUTS chains
    run in parallel (one device each) even on a machine of two cores."""
    return max(4, os.cpu_count() or 1)


def configure(
    host_devices: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    compilation_cache: bool = True,
) -> None:
    """Set the number of CPU devices and JAX's persistent compilation cache.

    Both settings are global to the process (they are JAX's, not sloth's). Call this once,
    before JAX computes anything: the device count is read when JAX starts its CPU backend,
    and a later call cannot change it (a warning says so).

    Parameters
    ----------
    host_devices : int, optional
        CPU devices for JAX to expose (through :func:`numpyro.set_host_device_count`).
        NUTS runs its chains in parallel when there are at least as many devices as chains;
        else it vectorizes them. Default: leave the device count as it is.
    cache_dir : str or path, optional
        Folder of JAX's persistent compilation cache (default: ``jax`` in sloth's cache
        folder, see :func:`sloth.data.sources.cache_dir`). Later processes then load
        compiled programs from it instead of compiling them again.
    compilation_cache : bool, default True
        Turn the persistent compilation cache on (False: leave JAX's setting as it is).

    Warns
    -----
    RuntimeWarning
        If JAX's CPU backend had already started with fewer than ``host_devices`` devices,
        or if the cache folder cannot be created.
    """
    if host_devices is not None:
        _set_host_devices(int(host_devices))
    if compilation_cache:
        _set_compilation_cache(cache_dir)


def _set_host_devices(count: int) -> None:
    if count < 1:
        raise ValueError(f"host_devices={count!r} must be a positive integer")
    import jax
    import numpyro

    numpyro.set_host_device_count(count)
    # the first query starts the CPU backend with the flag just set; if it had started
    # before, the flag has no effect and the count shows it
    available = len(jax.devices("cpu"))
    if available < count:
        warnings.warn(
            f"sloth.configure(host_devices={count}): JAX had already started with "
            f"{available} CPU device(s), so chains cannot run one per device. Call "
            "sloth.configure before any JAX computation (first thing in the script or "
            "notebook), or set XLA_FLAGS=--xla_force_host_platform_device_count="
            f"{count} before starting Python.",
            RuntimeWarning, stacklevel=3,
        )


def _set_compilation_cache(cache_dir: str | os.PathLike | None) -> None:
    import jax

    if cache_dir is None:
        from sloth.data.sources import cache_dir as sloth_cache_dir

        path = sloth_cache_dir() / "jax"
    else:
        path = Path(cache_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        warnings.warn(f"sloth.configure: no compilation cache at {path} ({error})",
                      RuntimeWarning, stacklevel=3)
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      MIN_CACHED_COMPILE_SECONDS)
