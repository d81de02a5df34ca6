"""Least-privilege IAM policies, one per Lambda function of a stage.

Each names only the actions its function calls and the ARNs (patterns) of
this stage's resources. Written to .chalice/policy-<stage>-<function>.json
and referenced from .chalice/config.json (autogen_policy is off). The deploy
script rewrites them for the stage it deploys; a test keeps the committed
ones equal to what this module generates.

The create_contact_list policy depends on the stage's contact-list mode
(CONTACT_LIST_MODE in the stage's environment in .chalice/config.json):
``list-per-tenant`` may touch only ``tenant-*`` lists, ``topic-per-tenant``
only the stage's shared list ``tenants-<stage>`` (and the lease lock items).

    python -m scripts.deploy.policies --stage dev      # (re)write the stage's files
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from scripts.deploy.template import (
    APP_NAME,
    PROJECT_DIR,
    TASK_FUNCTIONS,
    TRIGGER_FUNCTION,
    StageNames,
)

# Step Functions has no resource-level permissions for task-token calls.
RESOURCE_STAR_ALLOWED = {"states:SendTaskSuccess"}
API_HANDLER = "api_handler"
# Every Chalice function of the app, in .chalice/config.json's order.
FUNCTIONS = (API_HANDLER, TRIGGER_FUNCTION) + TASK_FUNCTIONS
LIST_PER_TENANT = "list-per-tenant"
TOPIC_PER_TENANT = "topic-per-tenant"
CONTACT_LIST_MODES = (LIST_PER_TENANT, TOPIC_PER_TENANT)
# chalicelib/locks.py keys a lock item "lock#<name>"; nothing else starts so.
LOCK_ITEMS = "lock#*"


def _arns(names: StageNames) -> Dict[str, str]:
    return {
        "table": f"arn:aws:dynamodb:*:*:table/{names.table}",
        "table_indexes": f"arn:aws:dynamodb:*:*:table/{names.table}/index/*",
        "bus": f"arn:aws:events:*:*:event-bus/{names.event_bus}",
        "state_machine": f"arn:aws:states:*:*:stateMachine:{names.state_machine}",
        "secret": f"arn:aws:secretsmanager:*:*:secret:{names.stripe_secret}-??????",
        "tenant_lists": "arn:aws:ses:*:*:contact-list/tenant-*",
        "shared_list": f"arn:aws:ses:*:*:contact-list/{names.shared_contact_list}",
        "logs": f"arn:aws:logs:*:*:log-group:/aws/lambda/{names.prefix}-*",
    }


def _statement(
    sid: str,
    actions: List[str],
    resources: List[str],
    condition: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def configured_contact_list_mode(stage: str, project_dir: Path = PROJECT_DIR) -> str:
    """CONTACT_LIST_MODE of the stage in .chalice/config.json (default list-per-tenant)."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise KeyError(f'stage "{stage}" is not in .chalice/config.json')
    env = config["stages"][stage].get("environment_variables") or {}
    return env.get("CONTACT_LIST_MODE") or LIST_PER_TENANT


def _contact_list_statements(
    mode: str, arn: Dict[str, str], tenant_record: List[str]
) -> List[Dict[str, Any]]:
    """create_contact_list: its tenant record, and only its mode's SES lists."""
    ses = ["ses:CreateContactList", "ses:GetContactList", "ses:UpdateContactList"]
    if mode == LIST_PER_TENANT:
        return [
            _statement("UpdateTenant", tenant_record, [arn["table"]]),
            _statement("TenantContactLists", ses, [arn["tenant_lists"]]),
        ]
    if mode == TOPIC_PER_TENANT:
        return [
            _statement("UpdateTenant", tenant_record, [arn["table"]]),
            # only the lease lock's items (chalicelib/locks.py), taken around
            # the shared list's read-modify-write; no tenant record
            _statement(
                "SharedListLock", ["dynamodb:PutItem", "dynamodb:DeleteItem"], [arn["table"]],
                {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [LOCK_ITEMS]}},
            ),
            _statement("SharedContactList", ses, [arn["shared_list"]]),
        ]
    raise ValueError(
        f"unknown contact-list mode {mode!r}: expected one of {', '.join(CONTACT_LIST_MODES)}"
    )


def policies(stage: str, contact_list_mode: str) -> Dict[str, Dict[str, Any]]:
    """Chalice function name -> policy document, for the stage's contact-list mode."""
    names = StageNames(stage)
    arn = _arns(names)
    logs = _statement(
        "Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        [arn["logs"], arn["logs"] + ":*"],
    )
    read = ["dynamodb:GetItem"]
    write = ["dynamodb:UpdateItem", "dynamodb:GetItem"]
    by_function = {
        API_HANDLER: [
            _statement("DeliverDecisions", sorted(RESOURCE_STAR_ALLOWED), ["*"]),
            _statement("ReadAndDecideTenants", write + ["dynamodb:Query"],
                       [arn["table"], arn["table_indexes"]]),
        ],
        "post_confirmation": [
            _statement("StartOnboarding", ["states:StartExecution"], [arn["state_machine"]]),
        ],
        "create_tenant_record": [
            _statement("CreateTenant", ["dynamodb:PutItem"] + read, [arn["table"]]),
        ],
        "create_stripe_customer": [
            _statement("ReadTenant", read, [arn["table"]]),
            _statement("ReadStripeKey", ["secretsmanager:GetSecretValue"], [arn["secret"]]),
        ],
        "update_tenant_with_stripe_id": [
            _statement("UpdateTenant", write, [arn["table"]]),
        ],
        "create_contact_list": _contact_list_statements(contact_list_mode, arn, write),
        "await_decision": [
            _statement("RecordPendingDecision", write, [arn["table"]]),
            _statement("RequestApproval", ["events:PutEvents"], [arn["bus"]]),
        ],
        "update_status_and_notify": [
            _statement("FinishTenant", write, [arn["table"]]),
            _statement("PublishOutcome", ["events:PutEvents"], [arn["bus"]]),
        ],
    }
    return {
        function: {"Version": "2012-10-17", "Statement": statements + [logs]}
        for function, statements in by_function.items()
    }


def policy_file(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def write_policy_files(
    stage: str, contact_list_mode: str, project_dir: Path = PROJECT_DIR
) -> List[Path]:
    written = []
    for function, document in policies(stage, contact_list_mode).items():
        path = project_dir / ".chalice" / policy_file(stage, function)
        text = json.dumps(document, indent=2) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def stage_function_config(stage: str) -> Dict[str, Any]:
    """The ``lambda_functions`` block of a stage in .chalice/config.json.

    The same in every contact-list mode: one policy file per function.
    """
    return {function: {"iam_policy_file": policy_file(stage, function)} for function in FUNCTIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=f"write {APP_NAME}'s IAM policy files")
    parser.add_argument("--stage", required=True)
    stage = parser.parse_args().stage
    try:
        mode = configured_contact_list_mode(stage)
    except KeyError as error:
        parser.error(error.args[0])
    for path in write_policy_files(stage, mode):
        print(path.relative_to(PROJECT_DIR))


if __name__ == "__main__":
    main()
