"""What `chalice package` would hand CloudFormation: admin routes behind IAM
(SigV4) authorization, and every function with its own least-privilege
policy (no "*" action; "*" resource only where AWS has no resource-level
permissions)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import policies
from scripts.provisioning import PROJECT_DIR

ACTION_STAR = ("*",)


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

    assert len(functions) == len(policies.policies("dev"))
    for name, function in functions.items():
        role_name = function["Properties"]["Role"]["Fn::GetAtt"][0]
        [policy] = roles[role_name]["Properties"]["Policies"]
        assert policy["PolicyDocument"] in policies.policies("dev").values(), name


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
    for function, document in policies.policies("dev").items():
        path = PROJECT_DIR / ".chalice" / policies.policy_file("dev", function)
        assert json.loads(path.read_text()) == document, path.name
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    assert config["stages"]["dev"]["lambda_functions"] == policies.stage_function_config("dev")
    assert config["stages"]["dev"]["autogen_policy"] is False
