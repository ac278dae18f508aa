"""Executors: run case jobs in-process, in a local process pool, or on a Ray cluster.

Every executor yields :class:`~radioactive.runner.plan.UnitResult` objects as units complete
(plus a ``None`` marker each time a whole job finishes), so the caller can store each unit at once:
a killed run loses at most the units in flight. Results are identical whatever the executor,
because every unit has its own generator and models are deterministic on one device.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from radioactive.errors import RadioactiveError
from radioactive.runner.plan import CaseJob, UnitResult, iter_case_job, run_case_job

Event = UnitResult | None  # None: one job finished
JobRunner = Callable[[Any], Iterable[UnitResult]]  # a job -> its unit results


def run_inline(jobs: Sequence[CaseJob]) -> Iterator[Event]:
    """Run the jobs one after the other in this process."""
    for job in jobs:
        yield from iter_case_job(job)
        yield None


def run_process_pool(
    jobs: Sequence[Any],
    workers: int,
    *,
    run_job: JobRunner = iter_case_job,
    poll_s: float = 0.2,
) -> Iterator[Event]:
    """Run the jobs in ``workers`` spawned processes, streaming unit results back.

    ``run_job(job)`` (importable by name, so the workers can unpickle it) yields the job's unit
    results in a worker. On Ctrl-C (``KeyboardInterrupt`` here) the queued jobs are cancelled at
    once, the workers are stopped, the units they had already sent are still yielded, and the
    interrupt goes on. Workers ignore Ctrl-C themselves (the parent decides) and exit when the
    parent process dies, even by ``SIGKILL`` (see :func:`_die_with_parent`).
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    todo = deque(jobs)
    pool: list[_Worker] = []
    try:
        for _ in range(min(workers, len(todo))):
            pool.append(_Worker(ctx, run_job))
            pool[-1].take(todo)
        while any(w.job is not None for w in pool):
            busy = [w for w in pool if w.job is not None]
            _wait_any([w.conn for w in busy] + [w.process.sentinel for w in busy], poll_s)
            for worker in busy:
                for kind, payload in worker.messages():
                    if kind == "unit":
                        yield payload
                        continue
                    job, worker.job = worker.job, None
                    if payload is not None:
                        raise RadioactiveError(
                            f"a worker process failed on {_describe(job)}: {payload}",
                            fix="rerun the same command to resume; completed units are kept",
                        )
                    yield None
                    worker.take(todo)
                failure = worker.failure() if worker.job is not None else None
                if failure is not None:
                    raise RadioactiveError(
                        f"a worker process ended while running {_describe(worker.job)} ({failure})",
                        fix="rerun the same command to resume; completed units are kept (if a "
                        "case needs more memory than the machine has, use fewer --workers)",
                    )
    except KeyboardInterrupt:
        todo.clear()  # queued jobs are cancelled, not run
        _stop(pool)
        for worker in pool:  # what the workers had finished before they stopped is kept
            for kind, payload in worker.messages():
                yield payload if kind == "unit" else None
        raise
    finally:
        _stop(pool)


class _Worker:
    """One spawned worker process and its end of a duplex pipe; ``job`` is what it runs now."""

    def __init__(self, ctx: Any, run_job: JobRunner) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_main, args=(child, os.getpid(), run_job), daemon=True
        )
        self.process.start()
        child.close()
        self.job: Any = None
        self.broken: str | None = None

    def take(self, todo: deque[Any]) -> None:
        """Send the next queued job, or tell the worker to exit when none is left."""
        if todo:
            self.job = todo.popleft()
            self._send(self.job)
        else:
            self._send(None)

    def _send(self, message: Any) -> None:
        try:
            self.conn.send(message)
        except (OSError, ValueError):  # the worker is gone already
            pass

    def messages(self) -> Iterator[tuple[str, Any]]:
        """The complete messages waiting in the pipe. A stream that cannot be read on (a killed
        worker's partial message, an interrupted read) is closed, with the reason kept."""
        while self.broken is None:
            try:
                if not self.conn.poll():
                    return
                message = self.conn.recv()
            except EOFError:
                self.broken = "it closed its pipe"
            except Exception as exc:  # any unreadable message ends the stream
                self.broken = f"its message could not be read ({type(exc).__name__}: {exc})"
            else:
                yield message

    def failure(self) -> str | None:
        """Why this worker cannot finish its job (``None`` while it still can)."""
        if self.broken is None and (self.process.is_alive() or self._pending()):
            return None
        if self.process.exitcode is None:
            # a worker that closed its pipe is exiting: wait a moment for its exit code
            self.process.join(timeout=5.0)
        code = self.process.exitcode
        reason = self.broken or "it stopped"
        return reason if code is None else f"{reason}; exit code {code}"

    def _pending(self) -> bool:
        try:
            return self.conn.poll()
        except (EOFError, OSError):
            return False


def _wait_any(objects: list[Any], timeout: float) -> None:
    from multiprocessing.connection import wait

    wait(objects, timeout=timeout)


def _stop(pool: Sequence[_Worker], grace_s: float = 2.0) -> None:
    """Stop every worker: idle ones are told to exit, busy ones are terminated."""
    for worker in pool:
        if worker.process.is_alive():
            if worker.job is None:
                worker._send(None)
            else:
                worker.process.terminate()
    deadline = time.monotonic() + grace_s
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(grace_s)


def _describe(job: Any) -> str:
    parts = [getattr(job, name, None) for name in ("dataset", "case_id", "model_label")]
    if all(part is not None for part in parts):
        return f"case {parts[0]}/{parts[1]} with {parts[2]}"
    return f"job {job!r}"


def _worker_main(conn: Any, parent_pid: int, run_job: JobRunner) -> None:
    """A worker's loop: receive a job, send each unit result, then ``("done", error or None)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent_pid)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            for result in run_job(job):
                conn.send(("unit", result))
        except Exception as exc:
            conn.send(("done", "".join(traceback.format_exception_only(exc)).strip()))
        else:
            conn.send(("done", None))


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int, *, prctl: bool = True, interval_s: float = 1.0) -> None:
    """Make this process exit when the process ``parent_pid`` dies, however it dies.

    On Linux the kernel sends ``SIGKILL`` when the parent goes (``prctl(PR_SET_PDEATHSIG)``);
    everywhere, a daemon thread checks every ``interval_s`` whether the parent is still there
    (its multiprocessing sentinel, and whether this process was re-parented) and exits if not.
    """
    if prctl and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    threading.Thread(
        target=_watch_parent, args=(parent_pid, interval_s), name="parent-watchdog", daemon=True
    ).start()


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    import multiprocessing as mp

    parent = mp.parent_process()
    while True:
        gone = os.getppid() != parent_pid
        if parent is not None and not gone:
            gone = not parent.is_alive()
        if gone:
            os._exit(1)
        time.sleep(interval_s)


def run_ray(
    jobs: Sequence[CaseJob], address: str | None, gpus_per_model: dict[str, float]
) -> Iterator[Event]:
    """Run each job as a Ray task (on an existing cluster with ``address``, else a local one).

    Units stream back through a Ray queue; a job of a model listed in ``gpus_per_model`` asks
    for that many GPUs.
    """
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError as exc:
        raise RadioactiveError(
            "the Ray executor needs Ray", fix='pip install "radioactive[ray]"'
        ) from exc
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        q = Queue()

        @ray.remote
        def task(job: CaseJob, q: Any) -> None:
            run_case_job(job, q.put)

        refs = [
            task.options(num_gpus=gpus_per_model.get(job.model_label, 0)).remote(job, q)
            for job in jobs
        ]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            while not q.empty():
                yield q.get()
            for ref in done:
                ray.get(ref)  # raises if the task failed
                while not q.empty():
                    yield q.get()
                yield None
        while not q.empty():
            yield q.get()
    finally:
        if started:
            ray.shutdown()


def execute(jobs: Sequence[CaseJob], kind: str, workers: int = 1, ray_address: str | None = None,
            gpus_per_model: dict[str, float] | None = None) -> Iterator[Event]:  # fmt: skip
    """Dispatch to the executor named ``kind`` ("inline", "process" or "ray")."""
    if kind == "inline" or (kind == "process" and workers <= 1):
        return run_inline(jobs)
    if kind == "process":
        return run_process_pool(jobs, workers)
    if kind == "ray":
        return run_ray(jobs, ray_address, gpus_per_model or {})
    raise RadioactiveError(f"unknown executor {kind!r}", fix="use inline, process or ray")
