"""Process-wide settings of JAX that sloth benefits from, applied only on request.

``import sloth`` changes nothing in the process. The command line calls :func:`configure`
once at start; a notebook or script may call it first thing, before any JAX computation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["configure", "default_host_devices", "persistent_program"]

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


# ------------------------------------------------------------------ traced programs kept
#: Folder, inside JAX's persistent compilation cache, of the traced programs of
#: :func:`persistent_program` (JAX's own eviction manages only its ``*-cache`` files).
EXPORTED_FOLDER = "sloth-exported"


@functools.cache
def _source_digest() -> str:
    """SHA-256 of every source file of sloth and of the versions of JAX, jaxlib and
    NumPyro: a traced program is reused only by the code that traced it."""
    import jax
    import jaxlib
    import numpyro

    digest = hashlib.sha256(
        json.dumps([jax.__version__, jaxlib.__version__, numpyro.__version__]).encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def persistent_program(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``function`` (jitted, array arguments only), traced once per shape across processes.

    JAX's persistent compilation cache (:func:`configure`) spares a new process the
    compilation of a program but not its tracing, which for a program such as the
    conditioning kernel of :mod:`sloth.conditioning` takes longer than running it. The
    returned callable keeps each traced program (:func:`jax.export.export`, serialized) in
    the folder :data:`EXPORTED_FOLDER` of that cache, keyed by ``name``, the shapes and dtypes
    of the arguments, and :func:`_source_digest`; later processes deserialize it instead of
    tracing. The results are those of ``function`` (the same StableHLO, compiled by the same
    XLA). Without a compilation cache configured, it is ``function`` itself: nothing is
    written.

    Parameters
    ----------
    function : callable
        A :func:`jax.jit`-wrapped function of arrays (static arguments bound beforehand,
        e.g. with :func:`functools.partial` before jitting).
    name : str
        Names the program in the cache (letters, digits, ``_`` and ``-``).

    Returns
    -------
    callable
        Takes the arguments of ``function`` (arrays, or values JAX turns into arrays).
    """
    programs: dict[str, Callable[..., Any]] = {}

    def call(*args: Any) -> Any:
        import jax
        import numpy as np

        folder = jax.config.jax_compilation_cache_dir
        if not folder:
            return function(*args)
        specs = [jax.ShapeDtypeStruct(np.shape(a), jax.numpy.result_type(a)) for a in args]
        key = hashlib.sha256(json.dumps(
            [name, [(s.shape, str(s.dtype)) for s in specs], _source_digest()]).encode())
        path = Path(folder) / EXPORTED_FOLDER / f"{name}-{key.hexdigest()[:32]}.jaxexport"
        program = programs.get(path.name)
        if program is None:
            program = jax.jit(_exported(function, specs, path).call)
            programs[path.name] = program
        return program(*args)

    return call


def _exported(function: Callable[..., Any], specs: list[Any], path: Path) -> Any:
    """The :class:`jax.export.Exported` of ``function`` at ``specs``: read from ``path``, or
    traced and written there (atomically; a file that cannot be read is traced anew)."""
    from jax import export

    wanted = [(tuple(s.shape), s.dtype) for s in specs]
    try:
        exported = export.deserialize(bytearray(path.read_bytes()))
        if [(tuple(a.shape), a.dtype) for a in exported.in_avals] != wanted:
            raise ValueError("it was traced for other argument shapes")
        return exported
    except FileNotFoundError:
        pass
    except Exception as error:  # a damaged or foreign file: trace again and replace it
        warnings.warn(f"sloth: the traced program {path} cannot be used ({error}); "
                      "tracing it again", RuntimeWarning, stacklevel=4)
    exported = export.export(function)(*specs)
    try:
        from sloth.io import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda temp: temp.write_bytes(exported.serialize()))
    except OSError as error:
        warnings.warn(f"sloth: the traced program cannot be kept at {path} ({error})",
                      RuntimeWarning, stacklevel=4)
    return exported
