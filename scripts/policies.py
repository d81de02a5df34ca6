"""Least-privilege IAM policies, one per Lambda function of a stage.

Each names only the actions its function calls and the ARNs (patterns) of
this stage's resources. Written to .chalice/policy-<stage>-<function>.json
and referenced from .chalice/config.json (autogen_policy is off). The deploy
script rewrites them for the stage it deploys; a test keeps the committed
ones equal to what this module generates.

    python -m scripts.policies --stage dev      # (re)write the stage's files
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List

from scripts.provisioning import APP_NAME, PROJECT_DIR, StageNames

# Step Functions has no resource-level permissions for task-token calls.
RESOURCE_STAR_ALLOWED = {"states:SendTaskSuccess", "states:SendTaskFailure"}
API_HANDLER = "api_handler"


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


def _statement(sid: str, actions: List[str], resources: List[str]) -> Dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def policies(stage: str) -> Dict[str, Dict[str, Any]]:
    """Chalice function name -> policy document."""
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
        "create_contact_list": [
            _statement("UpdateTenantAndLock",
                       write + ["dynamodb:PutItem", "dynamodb:DeleteItem"], [arn["table"]]),
            _statement("ContactLists",
                       ["ses:CreateContactList", "ses:GetContactList", "ses:UpdateContactList"],
                       [arn["tenant_lists"], arn["shared_list"]]),
        ],
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


def write_policy_files(stage: str, project_dir: Path = PROJECT_DIR) -> List[Path]:
    written = []
    for function, document in policies(stage).items():
        path = project_dir / ".chalice" / policy_file(stage, function)
        text = json.dumps(document, indent=2) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def stage_function_config(stage: str) -> Dict[str, Any]:
    """The ``lambda_functions`` block of a stage in .chalice/config.json."""
    return {
        function: {"iam_policy_file": policy_file(stage, function)}
        for function in policies(stage)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=f"write {APP_NAME}'s IAM policy files")
    parser.add_argument("--stage", required=True)
    for path in write_policy_files(parser.parse_args().stage):
        print(path.relative_to(PROJECT_DIR))


if __name__ == "__main__":
    main()
