"""Running a recovery plan: group after group, systems in parallel inside a group, bounded workers.

A system starts when the systems it depends on have come back; if one of them failed, it is
skipped with that reason (restoring a 介護保険 system whose 住民基本台帳 is missing proves
nothing). Once the run is aborted nothing new starts and the systems not yet started are
reported as aborted. ``work`` never raises for a system's own failure (see
:mod:`failover.recover`), so an exception here is a bug and propagates to the caller's
cleanup.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from failover.abort import AbortSignal
from failover.plan import PlanStep, RecoveryPlan
from failover.recover import new_result
from failover.results import SystemResult


def _not_run(step: PlanStep, group: int, status: str, reason: str) -> SystemResult:
    result = new_result(step, group)
    result.status, result.error = status, reason
    return result


def run_plan(
    plan: RecoveryPlan,
    work: Callable[[PlanStep, int], SystemResult],
    *,
    workers: int,
    abort: AbortSignal,
) -> list[SystemResult]:
    """Run ``work`` for every step in plan order; results come back in plan order."""
    results: dict[str, SystemResult] = {}
    for number, group in enumerate(plan.groups, start=1):
        pending = list(group)
        running: dict[Future[SystemResult], PlanStep] = {}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"bcp-group{number}") as pool:
            while pending or running:
                for step in list(pending):
                    if abort.triggered:
                        pending.remove(step)
                        results[step.system] = _not_run(step, number, "aborted", f"not started: {abort.reason}")
                        continue
                    failed = [d for d in step.depends_on if d in results and not results[d].ok]
                    if failed:
                        pending.remove(step)
                        results[step.system] = _not_run(
                            step, number, "skipped", f"not started: dependency {failed[0]} did not come back"
                        )
                        continue
                    if len(running) < workers and all(d in results for d in step.depends_on):
                        pending.remove(step)
                        running[pool.submit(work, step, number)] = step
                if not running:
                    if pending:
                        stuck = ", ".join(s.system for s in pending)
                        raise RuntimeError(f"plan cannot progress: {stuck} wait on systems outside the plan")
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    step = running.pop(future)
                    results[step.system] = future.result()
    return [results[step.system] for step in plan.steps]
