"""The stage's alarms, generated when ``make package`` merges the template.

Every alarm goes to the stage's admin notifications topic (template.json's
``AdminNotificationsTopic``), when it fires and when it is OK again. They are
made from what the stage is made of, so a new function or state machine
gets its alarms without a hand edit:
- each function of the app (``app_functions()``, as Chalice packages them):
  its Errors and its Throttles;
- each state machine of the template (``DEFINITIONS``): its failed,
  timed-out and aborted executions;
- the REST API: its 5XX answers;
- the reconciler's findings (chalicelib/reconciler.py ``METRICS``), which it
  logs in CloudWatch's embedded metric format in the stage's namespace.
Each fires on any occurrence in a 5-minute period (above zero); no data is
no news (TreatMissingData notBreaching). The reconciler's are the
exception: it reports every sweep, zeros included, once in each of its
15-minute periods, so its alarms look at that period and keep their state
while a period has no data (a lasting finding stays one alarm, not an
alarm and an OK every sweep). docs/runbook.md, "Alarms", says what each
means and what to do. Only these alarms may publish to the topic
(``topic_policy_alarm_condition``).
"""
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.reconciler import METRICS, metrics_namespace

TOPIC = "AdminNotificationsTopic"  # template.json's logical id
TOPIC_POLICY = "AdminNotificationsTopicPolicy"
ALARMS_STATEMENT = "StageAlarmsPublish"  # its statement for CloudWatch
PERIOD_SECONDS = 300
RECONCILE_PERIOD_SECONDS = 900  # app.py's schedule: Rate(15, MINUTES)
API = "RestAPI"  # the logical id chalice package gives the REST API

FUNCTION_METRICS = {
    "Errors": "errors",
    "Throttles": "throttles",
}
STATE_MACHINE_METRICS = {
    "ExecutionsFailed": "executions-failed",
    "ExecutionsTimedOut": "executions-timed-out",
    "ExecutionsAborted": "executions-aborted",
}
_MACHINE_NAMES = {"StateMachine": "onboarding", "OffboardingStateMachine": "offboarding"}


def _alarm(suffix: str, description: str, namespace: Any, metric: str,
           dimensions: list[dict[str, Any]], period: int = PERIOD_SECONDS,
           missing_data: str = "notBreaching") -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": {"Fn::Sub": "tenant-onboarding-${Stage}-" + suffix},
            "AlarmDescription": description + " What to do: docs/runbook.md, 'Alarms'.",
            "Namespace": namespace,
            "MetricName": metric,
            **({"Dimensions": dimensions} if dimensions else {}),
            "Statistic": "Sum",
            "Period": period,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": missing_data,
            "AlarmActions": [{"Ref": TOPIC}],
            "OKActions": [{"Ref": TOPIC}],
        },
    }


def alarms(functions: Mapping[str, str], state_machines: Iterable[str],
           api_stage: str) -> dict[str, dict[str, Any]]:
    """Every alarm of a stage by logical id. ``functions``: Chalice name ->
    logical id; ``state_machines``: logical ids; ``api_stage``: the REST
    API's stage name (chalice package's StageName)."""
    made: dict[str, dict[str, Any]] = {}
    for name, logical_id in sorted(functions.items()):
        for metric, suffix in FUNCTION_METRICS.items():
            made[f"{logical_id}{metric}Alarm"] = _alarm(
                f"{name}-{suffix}",
                f"Function {name}: {metric} above zero in {PERIOD_SECONDS // 60} minutes.",
                "AWS/Lambda", metric, [{"Name": "FunctionName", "Value": {"Ref": logical_id}}])
    for logical_id in state_machines:
        machine = _MACHINE_NAMES.get(logical_id, logical_id)
        for metric, suffix in STATE_MACHINE_METRICS.items():
            made[f"{logical_id}{metric}Alarm"] = _alarm(
                f"{machine}-{suffix}",
                f"The {machine} state machine: {metric} above zero in "
                f"{PERIOD_SECONDS // 60} minutes.",
                "AWS/States", metric, [{"Name": "StateMachineArn", "Value": {"Ref": logical_id}}])
    made["ApiServerErrorsAlarm"] = _alarm(
        "api-5xx",
        f"The API answered 5XX (an outage answered 503, or a 500) in {PERIOD_SECONDS // 60} "
        "minutes.",
        "AWS/ApiGateway", "5XXError",
        [{"Name": "ApiName", "Value": {"Fn::Sub": "tenant-onboarding-${Stage}"}},
         {"Name": "Stage", "Value": api_stage}])
    for metric, meaning in METRICS.items():
        made[f"Reconciler{metric}Alarm"] = _alarm(
            f"reconciler-{metric}",
            f"The reconciler's {metric} above zero in a sweep: {meaning}.",
            {"Fn::Sub": metrics_namespace("${Stage}")}, metric, [],
            period=RECONCILE_PERIOD_SECONDS, missing_data="missing")
    return made


def topic_policy_alarm_condition(alarm_ids: Iterable[str]) -> dict[str, Any]:
    """The topic policy's condition for CloudWatch: these alarms by ARN, not a
    name prefix (a stage ``dev``'s prefix would also match stage ``dev-eu``'s)."""
    return {"ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [logical_id, "Arn"]}
                                            for logical_id in sorted(alarm_ids)]}}
