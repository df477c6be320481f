"""Where a fleet's per-database jobs run: local worker processes, or a Dask cluster.

Both are a `concurrent.futures.Executor` behind one small interface (`Pool`): `submit`,
`map`, `slots` (how many jobs may run at once) and `restart` (after a worker process died).
Local: a `ProcessPoolExecutor` (`--jobs N`, started through a fork server, so no lock held
by a thread of this process is copied into a worker). Dask: `distributed.Client(address)`
and its `get_executor()` (`--dask ADDRESS`, the `schemalog[dask]` extra), optionally
restricted to named workers or to workers with a resource, which pins jobs to hosts.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from schemalog.engine.base.errors import ConfigError, UsageError

__all__ = ["DaskPool", "LocalPool", "Pool", "default_jobs", "open_pool", "running", "worker_name"]

# A worker process imports these once, in the fork server, before it is forked.
_PRELOAD = ["schemalog.engine.commands.fleet"]


def default_jobs() -> int:
    """The number of CPUs this process may use (`--jobs` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_name() -> str:
    """Where the calling code runs: `host pid N`, plus the Dask worker's name on Dask."""
    where = f"{socket.gethostname()} pid {os.getpid()}"
    distributed = sys.modules.get("distributed")  # a Dask worker has imported it
    if distributed is None:
        return where
    try:
        return f"{where} dask worker {distributed.get_worker().name}"
    except ValueError:  # not on a Dask worker
        return where


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (from /proc), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


class _Jobs:
    """How many jobs this worker process is running (a local worker runs one at a time)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self) -> None:
        """Return once no job runs in this process."""
        with self._idle:
            self._idle.wait_for(lambda: self._count == 0)


#: Jobs wrap their work in `with running:`, so a local worker never exits in the middle of one.
running = _Jobs()


def _watch_fleet(pid: int, started: str | None) -> None:
    """Exit this worker once the fleet process `pid` is gone, after the job in hand."""
    while _start_time(pid) == started:
        time.sleep(0.5)
    running.wait_idle()
    os._exit(0)


def _init_worker(fleet_pid: int, fleet_started: str | None) -> None:
    """Local worker initializer. Ctrl-C goes to the fleet process (which lets running jobs
    finish); a worker whose fleet process died (kill -9) finishes its database and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if fleet_started is not None:
        threading.Thread(target=_watch_fleet, args=(fleet_pid, fleet_started), daemon=True).start()


class Pool:
    """An executor for per-database jobs and how many of them may run at once."""

    slots: int
    where: str

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run `fn(*args)` on a worker; the future gives its result."""
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """`fn(item)` for every item, on the workers, results in order."""
        raise NotImplementedError

    def restart(self) -> None:
        """Replace a pool whose worker process died (local pools only)."""
        raise NotImplementedError

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers (`wait`: after the running jobs finish)."""
        raise NotImplementedError


class LocalPool(Pool):
    """`jobs` worker processes on this host."""

    def __init__(self, jobs: int) -> None:
        self.slots = jobs
        self.where = f"{jobs} worker process{'es' if jobs != 1 else ''} on {socket.gethostname()}"
        self._executor = self._new()

    def _new(self) -> Executor:
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
        else:  # pragma: no cover - not POSIX
            context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=context,
            initializer=_init_worker,
            initargs=(os.getpid(), _start_time(os.getpid())),
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._executor.submit(fn, *args)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        chunk = max(1, min(64, len(items) // (self.slots * 4) or 1))
        return list(self._executor.map(fn, items, chunksize=chunk))

    def restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new()

    def close(self, *, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


def _parse_resources(spec: str | None) -> dict[str, float] | None:
    """`{"name": amount}` from `name=amount[,name=amount]`; ConfigError when malformed."""
    if not spec:
        return None
    resources: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, amount = part.partition("=")
        try:
            value = float(amount) if sep else 1.0
        except ValueError:
            value = -1.0
        if not name.strip() or value <= 0:
            msg = f"bad --dask-resources {spec!r}: {part!r} is not NAME=AMOUNT"
            raise ConfigError(msg, hint="e.g. --dask-resources tenants-a=1")
        resources[name.strip()] = value
    return resources


class DaskPool(Pool):
    """The workers of a Dask distributed cluster, through `Client.get_executor()`."""

    def __init__(
        self,
        address: str,
        *,
        jobs: int | None = None,
        workers: Sequence[str] = (),
        resources: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        try:
            from distributed import Client
        except ImportError as exc:
            msg = "--dask needs Dask's distributed scheduler, which is not installed"
            raise UsageError(msg, hint="pip install 'schemalog[dask]'") from exc
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except OSError as exc:
            msg = f"cannot reach the Dask scheduler at {address}: {exc}"
            raise UsageError(
                msg, hint="check the address (tcp://HOST:8786) and that the scheduler runs"
            ) from exc
        try:
            restrict, threads = self._restrictions(address, workers, _parse_resources(resources))
        except BaseException:
            self._client.close()
            raise
        # pure=False: two submissions of one job are two runs, never a cached result.
        self._executor = self._client.get_executor(pure=False, **restrict)
        self.slots = jobs or threads
        self.where = f"the Dask cluster at {address} ({threads} worker threads)"

    def _restrictions(
        self, address: str, workers: Sequence[str], resources: dict[str, float] | None
    ) -> tuple[dict[str, Any], int]:
        """The submit() restrictions and the worker threads that satisfy them.

        Raises UsageError when no worker does (a job would wait for one forever): a name
        that is no worker's, a resource no worker offers, or a cluster without workers.
        """
        info: Mapping[str, Any] = self._client.scheduler_info().get("workers", {})
        by_key = {str(w.get("name")): w.get("name") for w in info.values()}
        by_key.update({a: a for a in info})
        unknown = [w for w in workers if w not in by_key]
        if unknown:
            msg = f"the Dask cluster at {address} has no worker named {', '.join(unknown)}"
            known = ", ".join(sorted(str(w.get("name")) for w in info.values())) or "none"
            raise UsageError(msg, hint=f"its workers are: {known}")
        chosen = {by_key[w] for w in workers}
        threads = 0
        for worker_address, worker in info.items():
            if chosen and worker_address not in chosen and worker.get("name") not in chosen:
                continue
            offered = worker.get("resources") or {}
            if resources and any(offered.get(k, 0) < v for k, v in resources.items()):
                continue
            threads += int(worker.get("nthreads", 1))
        if threads == 0:
            msg = f"no worker of the Dask cluster at {address} can take the jobs"
            raise UsageError(
                msg,
                hint="start workers (`dask worker ADDRESS`, with --resources or --name as "
                "--dask-resources/--dask-workers ask), then retry",
            )
        restrict: dict[str, Any] = {}
        if chosen:
            restrict["workers"] = sorted(chosen, key=str)
        if resources:
            restrict["resources"] = resources
        return restrict, threads

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._executor.submit(fn, *args)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return list(self._executor.map(fn, items))

    def restart(self) -> None:
        return None  # the scheduler reschedules the jobs of a worker that died

    def close(self, *, wait: bool = True) -> None:
        try:
            self._executor.shutdown(wait=wait)
        finally:
            self._client.close()


class _Opened:
    """A context manager around a Pool: closes it, without waiting after an interruption."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def __enter__(self) -> Pool:
        return self.pool

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.pool.close(wait=exc_type is None)


def open_pool(
    *,
    jobs: int | None,
    dask: str | None = None,
    dask_workers: Iterable[str] = (),
    dask_resources: str | None = None,
    items: int | None = None,
) -> _Opened:
    """A pool for `items` jobs: local (`jobs` processes, default the CPU count) or Dask."""
    if dask:
        return _Opened(
            DaskPool(dask, jobs=jobs, workers=tuple(dask_workers), resources=dask_resources)
        )
    wanted = jobs or default_jobs()
    return _Opened(LocalPool(max(1, min(wanted, items or wanted))))
