"""Run a sweep's independent tasks in this process or on a Dask cluster.

A sweep (the evaluation protocols of :func:`sloth.evaluation.harness.evaluate`, the refits
of ``sloth compare --refit-families``, simulation-based calibration) is a list of tasks, each
computed by one function from its own inputs and seed alone. :func:`map_tasks` runs them
through an :class:`Executor` and hands each result to ``on_result`` as soon as it is ready,
so that a caller can write rows as each task finishes and resume after a stop:

- :class:`InProcessExecutor` (the default) runs the tasks one after another in this process,
  in their order;
- :class:`DaskExecutor` submits them to a Dask ``distributed`` scheduler (an address, or a
  ``LocalCluster`` of worker processes on this machine, :meth:`DaskExecutor.local`) and
  delivers results as they complete, in any order.

Either way the results come back in the order of the tasks, so a sweep gives the same rows
in process and on a cluster provided each task is deterministic given its inputs (it must not
depend on which tasks ran before it in the same process) and the arithmetic is the same
(below).

Functions and tasks travel to the workers with Dask's own serialisation (cloudpickle); sloth
writes no pickle files. Functions defined at module level in an importable module travel by
reference, so every worker must import the same version of sloth.

JAX in the workers. JAX's CPU device count is fixed when JAX starts in a process, and
NUTS runs its chains in parallel only with at least as many devices as chains (vectorized
otherwise, which is another program and other floating-point rounding). Each task submitted
by :class:`DaskExecutor` therefore first calls :func:`sloth.configure` in its worker with
``host_devices`` (default :func:`sloth.config.default_host_devices`, as the command line
configures itself: at least four, so that up to four chains run one per device) and JAX's
persistent compilation cache, so that workers run the chains as this process does and load
the programs that an earlier worker compiled. A worker gives each of its threads' tasks all
of its devices: use one thread per worker process (``dask worker --nthreads 1``, the default
of :meth:`DaskExecutor.local`) and about one worker per core; two workers on two cores run
two fits at a time, each with its chains on four virtual devices sharing its core.

Floating-point rounding in the workers. Dask's nanny starts its worker processes with
NumPy's BLAS and LAPACK on one thread (:data:`BLAS_THREADS` set to 1 by
``distributed.nanny.pre-spawn-environ``), while a process of its own uses one thread per core
by default. A fit's NumPy linear algebra (the MAP, the whitening of the posterior, the
pilot's covariance) rounds its last bits otherwise on several BLAS threads than on one (and,
measured here, otherwise in a worker's thread than in a main thread even with the same two
threads), and NUTS chains amplify them into other draws: equally valid, not equal (on the
leaderboard the forecasts of a held-out family then differ by about 0.01, Monte Carlo error;
on the small tables of the tests, whose matrices OpenBLAS keeps on one thread, not at all).
A sweep on Dask gives exactly the rows of a sweep in process run with one BLAS thread
(``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1``), on the same kind of CPU
(OpenBLAS picks its kernels per CPU).

Dask is an optional dependency (``pip install 'sloth-scaling[dask]'``): this module and
the in-process path import nothing of it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sloth.exceptions import MissingDependencyError

__all__ = ["DaskExecutor", "Executor", "InProcessExecutor", "executor_from_scheduler",
           "map_tasks"]

#: The ``scheduler`` text that starts a ``LocalCluster`` (``local:N``, N worker processes).
LOCAL_PREFIX = "local:"
#: Thread counts of the numerical libraries (NumPy's BLAS and LAPACK) that Dask's nanny
#: sets to 1 in the worker processes it starts (``distributed.nanny.pre-spawn-environ``).
BLAS_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: The install command named when Dask is missing.
DASK_INSTALL = "pip install 'sloth-scaling[dask]'"


class Executor(abc.ABC):
    """Where the tasks of a sweep run (see the module docstring).

    Subclasses implement :meth:`map`; an executor is also a context manager that
    :meth:`close` s what it started.
    """

    @abc.abstractmethod
    def map[T, R](self, function: Callable[[T], R], tasks: Sequence[T], *,
            on_result: Callable[[int, R], None] | None = None) -> list[R]:
        """``[function(task) for task in tasks]``, each result passed to
        ``on_result(index, result)`` as soon as it is ready.

        Parameters
        ----------
        function : callable
            ``function(task) -> result``; on a cluster it and the tasks must be serialisable
            by Dask (module-level functions, data).
        tasks : sequence, shape (n,)
        on_result : callable, optional
            Called in this process with the position of the task in ``tasks`` and its
            result, in the order the tasks finish.

        Returns
        -------
        list, shape (n,)
            The results in the order of ``tasks``.

        Raises
        ------
        Exception
            The first error of a task, once the tasks still pending are cancelled (results
            already passed to ``on_result`` stay delivered).
        """

    def close(self) -> None:
        """Release what the executor started (nothing by default)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Run the tasks one after another in this process, in their order (the default).

    Functions run on the very objects given, so state they keep (a forecaster's compiled
    programs, its records) stays visible to the caller.
    """

    def map[T, R](self, function: Callable[[T], R], tasks: Sequence[T], *,
            on_result: Callable[[int, R], None] | None = None) -> list[R]:
        results = []
        for index, task in enumerate(tasks):
            result = function(task)
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results

    def __repr__(self) -> str:
        return "InProcessExecutor()"


@dataclass(frozen=True)
class _Configured:
    """``function`` run in a Dask worker after :func:`sloth.configure` has set the worker's
    JAX devices and compilation cache (once per process: later calls change nothing)."""

    function: Callable[[Any], Any]
    host_devices: int | None
    compilation_cache: bool

    def __call__(self, task: Any) -> Any:
        from sloth.config import configure, default_host_devices

        devices = default_host_devices() if self.host_devices is None else self.host_devices
        configure(host_devices=devices, compilation_cache=self.compilation_cache)
        return self.function(task)


def _distributed() -> Any:
    """The ``distributed`` module, or an error naming the install command."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            f"running tasks on Dask needs the packages dask and distributed, which are not "
            f"installed ({exc}). Fix: {DASK_INSTALL}, or run in process (no scheduler)"
        ) from None
    return distributed


class DaskExecutor(Executor):
    """Run the tasks on a Dask ``distributed`` cluster, results delivered as each finishes.

    Parameters
    ----------
    address : str or distributed.Client
        The scheduler's address (``tcp://HOST:8786``, as printed by ``dask scheduler``), or
        a client of it (not closed by :meth:`close`).
    host_devices : int, optional
        JAX CPU devices of each worker process (default:
        :func:`sloth.config.default_host_devices` of the worker's machine, as the command
        line configures itself; see the module docstring).
    compilation_cache : bool, default True
        Turn JAX's persistent compilation cache on in each worker (workers on one machine
        share its folder).
    timeout : float, default 10
        Seconds to wait for the scheduler.

    Raises
    ------
    MissingDependencyError
        Dask is not installed.
    OSError
        No scheduler answers at ``address``.
    """

    def __init__(self, address: Any, *, host_devices: int | None = None,
                 compilation_cache: bool = True, timeout: float = 10.0) -> None:
        distributed = _distributed()
        if host_devices is not None and int(host_devices) < 1:
            raise ValueError(f"host_devices={host_devices!r} must be a positive integer")
        self.host_devices = host_devices
        self.compilation_cache = compilation_cache
        self._cluster: Any = None
        if isinstance(address, distributed.Client):
            self.client, self._own_client = address, False
            return
        try:
            self.client = distributed.Client(address, timeout=timeout)
        except OSError as exc:
            raise OSError(
                f"no Dask scheduler answers at {address!r} within {timeout:g} s ({exc}). Fix: "
                "check the address, or start a scheduler (`dask scheduler`) and its workers "
                "(`dask worker ADDRESS --nthreads 1`), or use "
                f"'{LOCAL_PREFIX}N' for N worker processes on this machine") from None
        self._own_client = True

    @classmethod
    def local(cls, n_workers: int, *, threads_per_worker: int = 1,
              host_devices: int | None = None,
              compilation_cache: bool = True) -> DaskExecutor:
        """A ``distributed.LocalCluster`` of ``n_workers`` processes on this machine, and an
        executor on it (:meth:`close` stops the cluster).

        Parameters
        ----------
        n_workers : int
            Worker processes (about one per core).
        threads_per_worker : int, default 1
            Tasks each worker runs at once.
        host_devices, compilation_cache
            As for :class:`DaskExecutor`.
        """
        distributed = _distributed()
        if not (isinstance(n_workers, int) and n_workers >= 1):
            raise ValueError(f"n_workers={n_workers!r} must be a positive integer, e.g. 2")
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
            dashboard_address=None)
        try:
            executor = cls(distributed.Client(cluster), host_devices=host_devices,
                           compilation_cache=compilation_cache)
        except BaseException:
            cluster.close()
            raise
        executor._cluster, executor._own_client = cluster, True
        return executor

    def map[T, R](self, function: Callable[[T], R], tasks: Sequence[T], *,
            on_result: Callable[[int, R], None] | None = None) -> list[R]:
        distributed = _distributed()
        run = _Configured(function, self.host_devices, self.compilation_cache)
        futures = [self.client.submit(run, task, pure=False) for task in tasks]
        position = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in distributed.as_completed(futures):
                index = position[future.key]
                results[index] = future.result()  # a task's error is raised here
                if on_result is not None:
                    on_result(index, results[index])
        finally:  # after an error or Ctrl-C: nothing left running for this sweep
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
        return results

    def close(self) -> None:
        """Close the client (if this executor made it) and the local cluster (if any)."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address!r})"


def executor_from_scheduler(scheduler: str | None, *,
                            host_devices: int | None = None) -> Executor:
    """The executor of a ``--scheduler`` option.

    Parameters
    ----------
    scheduler : str or None
        ``None``: in process; ``"local:N"``: a ``LocalCluster`` of N worker processes on
        this machine; anything else: the address of a running Dask scheduler.
    host_devices : int, optional
        JAX devices per worker (see :class:`DaskExecutor`).

    Returns
    -------
    Executor
        To use as a context manager (it stops what it started).
    """
    if scheduler is None:
        return InProcessExecutor()
    if scheduler.startswith(LOCAL_PREFIX):
        count = scheduler[len(LOCAL_PREFIX):]
        if not (count.isdigit() and int(count) >= 1):
            raise ValueError(f"scheduler {scheduler!r}: write '{LOCAL_PREFIX}N' with N a "
                             f"positive number of worker processes, e.g. '{LOCAL_PREFIX}2'")
        return DaskExecutor.local(int(count), host_devices=host_devices)
    if not scheduler.strip():
        raise ValueError("scheduler '': give a scheduler address (tcp://HOST:8786) or "
                         f"'{LOCAL_PREFIX}N'")
    return DaskExecutor(scheduler, host_devices=host_devices)


def map_tasks[T, R](function: Callable[[T], R], tasks: Sequence[T], *,
              executor: Executor | None = None,
              on_result: Callable[[int, R], None] | None = None) -> list[R]:
    """Run ``function`` on every task through ``executor`` (default: in process).

    The entry point of sweeps: see :meth:`Executor.map` for the parameters and the module
    docstring for what a task must satisfy so that every executor gives the same results.

    Examples
    --------
    >>> from sloth.executor import map_tasks
    >>> map_tasks(abs, [-2, 3], on_result=lambda i, r: print(i, r))
    0 2
    1 3
    [2, 3]
    """
    return (executor or InProcessExecutor()).map(function, list(tasks), on_result=on_result)
