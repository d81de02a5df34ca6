"""Control of the onboarding state machine: start it, resume its wait."""
import json
from typing import Any, Dict

from chalicelib.errors import aws_call, aws_error_code
from chalicelib.tenants import NewTenant
from chalicelib.logs import get_logger

logger = get_logger(__name__)


class DecisionNotDelivered(Exception):
    """SendTaskSuccess refused the decision; ``reason`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # invalid_token | unknown_task | not_waiting


def execution_input(tenant: NewTenant) -> str:
    """Deterministic input: a repeated trigger asks for the very same execution."""
    return json.dumps({"tenant": tenant.to_dict()}, sort_keys=True, separators=(",", ":"))


def execution_arn(state_machine_arn: str, execution_name: str) -> str:
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{execution_name}"


def redact_token(task_token: str) -> str:
    """Enough of a task token to correlate log lines, never enough to use it."""
    return f"...{task_token[-6:]}" if len(task_token) > 12 else "..."


class OnboardingWorkflow:
    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._state_machine_arn = state_machine_arn

    def start(self, tenant: NewTenant) -> str:
        """Start onboarding once per tenant; a repeat is a no-op."""
        name = tenant.tenant_id
        try:
            with aws_call("Step Functions"):
                response = self._sfn.start_execution(
                    stateMachineArn=self._state_machine_arn,
                    name=name,
                    input=execution_input(tenant),
                )
        except Exception as error:
            if aws_error_code(error) != "ExecutionAlreadyExists":
                raise
            arn = execution_arn(self._state_machine_arn, name)
            logger.info(
                "onboarding already started; not starting it again",
                extra={"tenantId": tenant.tenant_id, "executionArn": arn},
            )
            return arn
        arn = response["executionArn"]
        logger.info(
            "started onboarding", extra={"tenantId": tenant.tenant_id, "executionArn": arn}
        )
        return arn

    def send_decision(self, task_token: str, decision: Dict[str, Any]) -> None:
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
