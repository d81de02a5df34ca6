import pytest

from chalicelib.errors import AwsServiceUnavailable, aws_call
from tests.unit.conftest import client_error


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "ServiceUnavailable"]
)
def test_given_a_transient_aws_error_when_inside_aws_call_then_it_becomes_service_unavailable(code):
    with pytest.raises(AwsServiceUnavailable, match=code) as raised:
        with aws_call("DynamoDB"):
            raise client_error(code)

    assert raised.value.__cause__.response["Error"]["Code"] == code


def test_given_a_permanent_aws_error_when_inside_aws_call_then_it_propagates_unchanged():
    original = client_error("AccessDeniedException")

    with pytest.raises(type(original)) as raised:
        with aws_call("DynamoDB"):
            raise original

    assert raised.value is original


def test_given_a_non_aws_exception_when_inside_aws_call_then_it_propagates_unchanged():
    with pytest.raises(KeyError):
        with aws_call("DynamoDB"):
            raise KeyError("x")
