"""Executors: run case jobs in-process, in a local process pool, or on a Ray cluster.

Every executor yields :class:`~radioactive.runner.plan.UnitResult` objects as units complete
(plus a ``None`` marker each time a whole job finishes), so the caller can store each unit at once:
a killed run loses at most the units in flight. Results are identical whatever the executor,
because every unit has its own generator and models are deterministic on one device.
"""

from __future__ import annotations

import queue as queue_mod
from collections.abc import Iterator, Sequence
from typing import Any

from radioactive.errors import RadioactiveError
from radioactive.runner.plan import CaseJob, UnitResult, iter_case_job, run_case_job

Event = UnitResult | None  # None: one job finished


def run_inline(jobs: Sequence[CaseJob]) -> Iterator[Event]:
    """Run the jobs one after the other in this process."""
    for job in jobs:
        yield from iter_case_job(job)
        yield None


def _pool_worker(job: CaseJob, q: Any) -> None:
    run_case_job(job, q.put)


def run_process_pool(jobs: Sequence[CaseJob], workers: int) -> Iterator[Event]:
    """Run the jobs in ``workers`` spawned processes, streaming unit results back."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pending = {pool.submit(_pool_worker, job, q) for job in jobs}
            while pending:
                yield from _drain(q)
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                yield from _drain(q)
                for fut in done:
                    exc = fut.exception()
                    if exc is not None:
                        raise RadioactiveError(
                            f"a worker process failed: {exc}",
                            fix="rerun the same command to resume; completed units are kept",
                        ) from exc
                    yield None
            yield from _drain(q)


def _drain(q: Any) -> Iterator[UnitResult]:
    while True:
        try:
            yield q.get_nowait()
        except queue_mod.Empty:
            return


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
