"""What `chalice package` would hand CloudFormation: admin routes behind IAM
(SigV4) authorization, and every function with its own least-privilege
policy (no "*" action; "*" resource only where AWS has no resource-level
permissions)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.locks import LeaseLock
from scripts.deploy import policies
from scripts.deploy.template import PROJECT_DIR, StageNames

ACTION_STAR = ("*",)
MODES = policies.CONTACT_LIST_MODES
DEV_MODE = policies.configured_contact_list_mode("dev")


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    for name in ("app.py", "requirements.txt", "chalicelib", ".chalice"):
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, project / name,
                            ignore=shutil.ignore_patterns("__pycache__", "deployed", "deployments"))
        else:
            shutil.copy(source, project / name)
    out = tmp_path_factory.mktemp("out")
    chalice = Path(sys.executable).with_name("chalice")
    result = subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(out / "package")],
        cwd=project, capture_output=True, text=True, timeout=600,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "package" / "sam.json").read_text())


def test_every_route_requires_iam_authorization(sam):
    api = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    schemes = {
        name for name, scheme in api["securityDefinitions"].items()
        if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4"
    }
    routes = [
        (path, method, spec)
        for path, methods in api["paths"].items()
        for method, spec in methods.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]

    assert routes
    for path, method, spec in routes:
        used = {name for requirement in spec.get("security", []) for name in requirement}
        assert used and used <= schemes, f"{method.upper()} {path} is not IAM-authorized"


def test_every_function_runs_with_its_own_policy_file(sam):
    functions = {
        name: resource for name, resource in sam["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    roles = {name: r for name, r in sam["Resources"].items() if r["Type"] == "AWS::IAM::Role"}

    assert len(functions) == len(policies.policies("dev", DEV_MODE))
    for name, function in functions.items():
        role_name = function["Properties"]["Role"]["Fn::GetAtt"][0]
        [policy] = roles[role_name]["Properties"]["Policies"]
        assert policy["PolicyDocument"] in policies.policies("dev", DEV_MODE).values(), name


def test_no_policy_grants_every_action_or_needless_every_resource():
    for path in (PROJECT_DIR / ".chalice").glob("policy-*.json"):
        for statement in json.loads(path.read_text())["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                assert action != "*" and not action.endswith(":*"), f"{path.name}: {action}"
            if "*" in resources:
                assert set(actions) <= policies.RESOURCE_STAR_ALLOWED, f"{path.name}: {actions} on *"


def test_committed_policy_files_are_what_the_generator_writes():
    for function, document in policies.policies("dev", DEV_MODE).items():
        path = PROJECT_DIR / ".chalice" / policies.policy_file("dev", function)
        assert json.loads(path.read_text()) == document, path.name
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    assert config["stages"]["dev"]["lambda_functions"] == policies.stage_function_config("dev")
    assert config["stages"]["dev"]["autogen_policy"] is False


# --- the generated policies themselves ------------------------------------------
def _iam_match(pattern: str, value: str) -> bool:
    """IAM's ARN wildcards: * any run of characters, ? one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value) is not None


def _statements(stage, mode, function):
    return policies.policies(stage, mode)[function]["Statement"]


def _ses_resources(stage, mode):
    return [
        resource
        for statement in _statements(stage, mode, "create_contact_list")
        if any(action.startswith("ses:") for action in statement["Action"])
        for resource in statement["Resource"]
    ]


def test_the_contact_list_policy_grants_only_the_stage_modes_lists():
    assert _ses_resources("dev", "list-per-tenant") == ["arn:aws:ses:*:*:contact-list/tenant-*"]
    assert _ses_resources("dev", "topic-per-tenant") == [
        "arn:aws:ses:*:*:contact-list/tenants-dev"
    ]
    with pytest.raises(ValueError, match="unknown contact-list mode"):
        policies.policies("dev", "list-per-stage")


@pytest.mark.parametrize("mode", MODES)
def test_no_stage_may_touch_another_stages_shared_list(mode):
    stages = ["dev", "local", "prod", "staging", "onboarding-dev"]
    for stage in stages:
        for pattern in _ses_resources(stage, mode):
            for other in stages:
                shared = f"arn:aws:ses:us-east-1:123456789012:contact-list/" \
                         f"{StageNames(other).shared_contact_list}"
                if other != stage or mode == "list-per-tenant":
                    assert not _iam_match(pattern, shared), (stage, mode, pattern, other)
    # and the per-tenant pattern still covers a tenant's own list
    assert _iam_match(_ses_resources("dev", "list-per-tenant")[0],
                      "arn:aws:ses:us-east-1:1:contact-list/tenant-74896a7c-0000")


def test_lock_writes_are_limited_to_the_lock_items():
    lock_key = LeaseLock(None, "table", StageNames("dev").shared_contact_list)._key["pk"]["S"]
    statements = _statements("dev", "topic-per-tenant", "create_contact_list")
    writes = [s for s in statements
              if {"dynamodb:PutItem", "dynamodb:DeleteItem"} & set(s["Action"])]

    assert len(writes) == 1
    [lock] = writes
    assert lock["Action"] == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    assert lock["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["lock#*"]}
    }
    assert _iam_match(lock["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"][0],
                      lock_key)
    [record] = [s for s in statements if "dynamodb:UpdateItem" in s["Action"]]
    assert record["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert "Condition" not in record
    # list-per-tenant takes no lock: no item writes at all
    assert not any(
        {"dynamodb:PutItem", "dynamodb:DeleteItem"} & set(s["Action"])
        for s in _statements("dev", "list-per-tenant", "create_contact_list")
    )


@pytest.mark.parametrize("mode", MODES)
def test_every_granted_action_is_one_the_app_calls(mode):
    """No grant for a call nothing makes (Lambda's runtime writes the logs)."""
    source = (PROJECT_DIR / "app.py").read_text() + "".join(
        path.read_text() for path in sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))
    )
    for function, document in policies.policies("dev", mode).items():
        for statement in document["Statement"]:
            for action in statement["Action"]:
                if action.startswith("logs:"):
                    continue
                method = re.sub(r"(?<!^)(?=[A-Z])", "_", action.split(":")[1]).lower()
                assert f".{method}(" in source, f"{function}: {action} is never called"
    assert policies.RESOURCE_STAR_ALLOWED == {"states:SendTaskSuccess"}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_has_one_policy_per_function_in_the_config_block(mode):
    assert list(policies.policies("prod", mode)) == list(policies.FUNCTIONS)
    assert list(policies.stage_function_config("prod")) == list(policies.FUNCTIONS)
