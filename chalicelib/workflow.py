"""Control of the onboarding state machine: start it, resume its wait."""
import json
from typing import TYPE_CHECKING, Any

from chalicelib.errors import DecisionNotDelivered, aws_call, aws_error_code
from chalicelib.logs import get_logger
from chalicelib.tenants import NewTenant

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

logger = get_logger(__name__)


def execution_name(tenant_id: str, attempt: int = 1) -> str:
    """The first attempt is named after the tenant; each retry gets its own name
    (Step Functions keeps a closed execution's name for 90 days)."""
    return tenant_id if attempt <= 1 else f"{tenant_id}-attempt-{attempt}"


def execution_input(tenant: NewTenant, attempt: int = 1) -> str:
    """Deterministic input: a repeated trigger asks for the very same execution."""
    body: dict[str, Any] = {"tenant": tenant.to_dict()}
    if attempt > 1:
        body["attempt"] = attempt
    return _canonical_json(body)


def _canonical_json(body: dict[str, Any]) -> str:
    """The same body always gives the same text (StartExecution compares inputs)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def execution_arn(state_machine_arn: str, execution_name: str) -> str:
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{execution_name}"


def redact_token(task_token: str) -> str:
    """Enough of a task token to correlate log lines, never enough to use it."""
    return f"...{task_token[-6:]}" if len(task_token) > 12 else "..."


class StateMachineRuns:
    """Named executions of one state machine: started once, looked up by name."""

    def __init__(self, sfn_client: "SFNClient", state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._state_machine_arn = state_machine_arn

    def run(self, name: str, body: str, tenant_id: str) -> str:
        """Start ``name`` once; repeating it is a no-op.

        StartExecution with the same name and input returns the running
        execution; ExecutionAlreadyExists means that name was used (by this
        very run, already started, or by one that has ended: ``status`` tells).
        """
        try:
            with aws_call("Step Functions"):
                response = self._sfn.start_execution(
                    stateMachineArn=self._state_machine_arn, name=name, input=body
                )
        except Exception as error:
            if aws_error_code(error) != "ExecutionAlreadyExists":
                raise
            arn = execution_arn(self._state_machine_arn, name)
            logger.info("%s was already started; not starting it again", name,
                        extra={"tenantId": tenant_id, "executionArn": arn})
            return arn
        arn = str(response["executionArn"])
        logger.info("started %s", name, extra={"tenantId": tenant_id, "executionArn": arn})
        return arn

    def status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED..., or None if it never started."""
        arn = execution_arn(self._state_machine_arn, name)
        try:
            with aws_call("Step Functions"):
                return str(self._sfn.describe_execution(executionArn=arn)["status"])
        except Exception as error:
            if aws_error_code(error) == "ExecutionDoesNotExist":
                return None
            raise


def offboarding_name(tenant_id: str, attempt: int = 1) -> str:
    return f"{tenant_id}-offboarding-{attempt}"


class OffboardingWorkflow(StateMachineRuns):
    """The offboarding state machine (offboarding.json): one run per request."""

    def start(self, tenant: NewTenant, attempt: int) -> str:
        body = _canonical_json({"tenant": tenant.to_dict(), "attempt": attempt})
        return self.run(offboarding_name(tenant.tenant_id, attempt), body, tenant.tenant_id)

    def execution_status(self, tenant_id: str, attempt: int) -> str | None:
        return self.status(offboarding_name(tenant_id, attempt))


class OnboardingWorkflow(StateMachineRuns):
    def start(self, tenant: NewTenant, attempt: int = 1) -> str:
        """Start an attempt of onboarding once; repeating it is a no-op."""
        return self.run(
            execution_name(tenant.tenant_id, attempt), execution_input(tenant, attempt),
            tenant.tenant_id,
        )

    def execution_status(self, tenant_id: str, attempt: int = 1) -> str | None:
        return self.status(execution_name(tenant_id, attempt))

    def send_decision(self, task_token: str, decision: dict[str, Any]) -> None:
        try:
            with aws_call("Step Functions"):
                self._sfn.send_task_success(
                    taskToken=task_token, output=json.dumps(decision)
                )
        except Exception as error:
            code = aws_error_code(error)
            if code == "InvalidToken":
                raise DecisionNotDelivered(
                    "invalid_token", "taskToken is not a valid Step Functions task token"
                ) from None
            if code == "TaskDoesNotExist":
                raise DecisionNotDelivered(
                    "unknown_task", "no onboarding is waiting for this taskToken"
                ) from None
            if code == "TaskTimedOut":
                raise DecisionNotDelivered(
                    "not_waiting",
                    "this onboarding is no longer waiting for a decision: "
                    "it was already decided or its approval window has passed",
                ) from None
            raise
        logger.info(
            "delivered decision %s",
            decision.get("status"),
            extra={"taskToken": redact_token(task_token)},
        )
