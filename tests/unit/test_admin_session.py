"""The admin CLI's sign-in: new password the first time, a private token file, refresh."""
import stat

import boto3
import pytest
from moto import mock_aws

from scripts.admin.session import AdminSession, SignInError, admin_password_policy, password_policy
from scripts.deploy.template import load_template

TEMPORARY, NEW = "Temporary-Pass-1!", "My-Own-Pass-123!"


@pytest.fixture
def pool():
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="admins", UsernameAttributes=["email"])[
            "UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="cli",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool_id, Username="ops@example.com",
                                  TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
        yield cognito, client_id


def answers(*replies):
    replies = iter(replies)
    return lambda prompt: next(replies)


def test_given_a_first_sign_in_then_a_new_password_is_set_and_tokens_kept_privately(pool, tmp_path):
    cognito, client_id = pool
    path = tmp_path / "session" / "admin.json"

    AdminSession(cognito, client_id, path).login("ops@example.com", answers(TEMPORARY, NEW, NEW))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert NEW not in path.read_text() and TEMPORARY not in path.read_text()
    again = AdminSession(cognito, client_id, tmp_path / "other.json")
    again.login("ops@example.com", answers(NEW))  # the new password is the password now
    assert again.id_token().count(".") == 2


def test_given_two_different_new_passwords_then_nothing_changes(pool, tmp_path):
    cognito, client_id = pool

    with pytest.raises(SignInError, match="differ"):
        AdminSession(cognito, client_id, tmp_path / "a.json").login(
            "ops@example.com", answers(TEMPORARY, NEW, NEW + "x"))
    assert not (tmp_path / "a.json").exists()


def test_given_a_wrong_password_then_a_sentence_and_no_token(pool, tmp_path):
    cognito, client_id = pool

    with pytest.raises(SignInError, match="NotAuthorizedException"):
        AdminSession(cognito, client_id, tmp_path / "a.json").login(
            "ops@example.com", answers("Wrong-Pass-1!"))
    assert not (tmp_path / "a.json").exists()


def test_given_an_expired_id_token_then_it_is_refreshed_once(pool, tmp_path):
    cognito, client_id = pool
    now = [1_000_000.0]
    session = AdminSession(cognito, client_id, tmp_path / "a.json", clock=lambda: now[0])
    session.login("ops@example.com", answers(TEMPORARY, NEW, NEW))
    flows = []
    cognito.meta.events.register(
        "before-parameter-build.cognito-identity-provider.InitiateAuth",
        lambda params, **_: flows.append(params["AuthFlow"]))
    first = session.id_token()
    assert session.id_token() == first
    assert flows == []  # still valid: no call

    now[0] += 3600
    refreshed = session.id_token()
    assert session.id_token() == refreshed

    assert flows == ["REFRESH_TOKEN_AUTH"]
    assert refreshed.count(".") == 2
    assert '"refreshToken": null' not in (tmp_path / "a.json").read_text()


def test_given_no_sign_in_then_the_cli_says_to_log_in(pool, tmp_path):
    cognito, client_id = pool
    with pytest.raises(SignInError, match="login"):
        AdminSession(cognito, client_id, tmp_path / "none.json").id_token()


@pytest.fixture
def policed_pool():
    """A pool with the admin pool's own password policy, from template.json."""
    policy = load_template()["Resources"]["AdminUserPool"]["Properties"]["Policies"]["PasswordPolicy"]
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(
            PoolName="admins", UsernameAttributes=["email"],
            Policies={"PasswordPolicy": {k: v for k, v in policy.items()
                                         if k != "TemporaryPasswordValidityDays"}},
        )["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="cli", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool_id, Username="ops@example.com",
                                  TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
        yield cognito, client_id


def test_given_a_new_password_the_policy_refuses_then_a_sentence_stating_the_real_policy(
    policed_pool, tmp_path
):
    cognito, client_id = policed_pool
    session = AdminSession(cognito, client_id, tmp_path / "a.json",
                           password_rule=admin_password_policy())

    with pytest.raises(SignInError) as refused:
        session.login("ops@example.com", answers(TEMPORARY, "Short-Pass1", "Short-Pass1"))  # 11

    said = str(refused.value)
    assert said == ("Cognito refused the new password: choose one of at least 12 characters, with "
                    "upper- and lower-case letters, a digit and a symbol. Nothing was changed: "
                    "sign in again with the temporary password")
    assert "Exception" not in said
    assert not (tmp_path / "a.json").exists()


@pytest.mark.parametrize("policy, said", [
    ({"MinimumLength": 12, "RequireUppercase": True, "RequireLowercase": True,
      "RequireNumbers": True, "RequireSymbols": True},
     "at least 12 characters, with upper- and lower-case letters, a digit and a symbol"),
    ({"MinimumLength": 10, "RequireUppercase": True, "RequireLowercase": True,
      "RequireNumbers": True, "RequireSymbols": False},
     "at least 10 characters, with upper- and lower-case letters and a digit"),
    ({"MinimumLength": 8, "RequireLowercase": True}, "at least 8 characters, with a lower-case letter"),
    ({"MinimumLength": 6}, "at least 6 characters"),
])
def test_a_password_policy_in_words(policy, said):
    assert password_policy(policy) == said


def test_the_cli_prints_a_refused_new_password_as_one_line_without_a_traceback(monkeypatch, capsys):
    from scripts.admin import cli

    class Refusing:
        def login(self, email):
            raise SignInError("Cognito refused the new password: choose one of at least 12 characters")

    monkeypatch.setattr(cli, "target_outputs", lambda stage, state_dir: {})
    monkeypatch.setattr(cli, "admin_session", lambda *args: Refusing())

    assert cli.main(["login", "ops@example.com"]) == 1
    err = capsys.readouterr().err
    assert err == "admin: Cognito refused the new password: choose one of at least 12 characters\n"


def test_given_a_first_sign_in_then_the_new_password_is_asked_twice(pool, tmp_path):
    cognito, client_id = pool
    asked = []

    def ask(prompt):
        asked.append(prompt)
        return {"Password: ": TEMPORARY}.get(prompt, NEW)

    AdminSession(cognito, client_id, tmp_path / "a.json").login("ops@example.com", ask)

    assert asked == ["Password: ", "New password (first sign-in): ", "New password again: "]


def test_given_a_sign_in_saved_for_another_pool_then_sign_in_again_and_no_call(pool, tmp_path):
    """A session an earlier local stack saved: that stack's pool and client are gone."""
    cognito, client_id = pool
    path = tmp_path / "a.json"
    AdminSession(cognito, client_id, path).login("ops@example.com", answers(TEMPORARY, NEW, NEW))
    calls = []
    cognito.meta.events.register("before-call.cognito-identity-provider.*",
                                 lambda **kwargs: calls.append(kwargs))

    with pytest.raises(SignInError) as refused:
        AdminSession(cognito, "the-client-of-this-stack", path).id_token()

    assert "sign in again" in str(refused.value) and 'make admin ARGS="login"' in str(refused.value)
    assert calls == []
