"""Step Functions executions stopped as in AWS, on moto (which is pinned).

AWS's StopExecution ends an execution at once, also one parked on a task
token (its status turns ABORTED). moto marks it stopped but leaves the
waiting task blocked until its token is answered or times out (24 hours
here), so the execution stays RUNNING. Stopping here also wakes the
execution's waiting tasks; the error a woken task raises does not turn the
stopped execution into a failed one (AWS reports it ABORTED).
"""
from collections.abc import Callable
from typing import Any

from scripts.local.patching import replace


def stop_executions_like_aws() -> None:
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    def keep_stopped(set_error: Callable[..., Any]) -> Callable[..., Any]:
        def stays_stopped(env: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(env._program_state, ProgramStopped):
                return None
            return set_error(env, *args, **kwargs)

        return stays_stopped

    def wake_waiting_tasks(moto_stop: Callable[..., Any]) -> Callable[..., Any]:
        def stop(execution: Any, *args: Any, **kwargs: Any) -> Any:
            result = moto_stop(execution, *args, **kwargs)
            worker = execution.exec_worker
            pool = getattr(worker.env, "callback_pool_manager", None) if worker else None
            for endpoint in list(getattr(pool, "_pool", {}).values()):
                endpoint.interrupt_all()
            return result

        return stop

    replace(Execution, "stop", wake_waiting_tasks)
    replace(Environment, "set_error", keep_stopped)
