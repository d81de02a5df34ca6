"""The admin CLI's sign-in: new password the first time, a private token file, refresh."""
import stat

import boto3
import pytest
from moto import mock_aws

from scripts.admin.session import AdminSession, SignInError

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
