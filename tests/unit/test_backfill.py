"""Records written before the byEmail index get their emailKey, once."""
from chalicelib.tenants import NewTenant
from scripts.deploy.backfill import backfill_email_keys
from tests.unit.conftest import TABLE_NAME, TENANT_ID, raw_item

OLDER = "00000000-0000-4000-8000-000000000777"


def put_older_record(dynamodb, tenant_id: str, email: str) -> None:
    """A record as the writer made it before it set emailKey."""
    dynamodb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": tenant_id}, "sk": {"S": "tenant"}, "status": {"S": "active"},
        "email": {"S": email}, "name": {"S": "Older Ltd"},
        "createdAt": {"S": "2026-01-01T00:00:00.000Z"}, "updatedAt": {"S": "2026-01-01T00:00:00.000Z"},
    })


def test_the_writer_keys_a_new_record_by_its_email_lower_cased(tenants, dynamodb):
    tenants.create(NewTenant(TENANT_ID, "Ada.Lovelace@Example.COM", "Ada Ltd"), "2026-11-26T13:51:53.123Z")

    item = raw_item(dynamodb)
    assert item["emailKey"] == {"S": "ada.lovelace@example.com"}
    assert item["email"] == {"S": "Ada.Lovelace@Example.COM"}  # shown as the tenant gave it


def test_an_older_record_gets_its_key_and_a_second_run_writes_nothing(tenants, dynamodb):
    put_older_record(dynamodb, OLDER, "Grace@Example.com")
    tenants.create(NewTenant(TENANT_ID, "ada@example.com", "Ada Ltd"), "2026-11-26T13:51:53.123Z")
    # a subscriber item shares the table: it is no tenant, and keeps no emailKey
    dynamodb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": f"{TENANT_ID}#subscribers"}, "sk": {"S": "sub@example.com"},
        "email": {"S": "sub@example.com"}})

    assert backfill_email_keys(dynamodb, TABLE_NAME) == 1
    assert raw_item(dynamodb, OLDER)["emailKey"] == {"S": "grace@example.com"}
    assert raw_item(dynamodb, OLDER)["updatedAt"] == {"S": "2026-01-01T00:00:00.000Z"}  # not a change
    subscriber = dynamodb.get_item(TableName=TABLE_NAME, Key={
        "pk": {"S": f"{TENANT_ID}#subscribers"}, "sk": {"S": "sub@example.com"}})["Item"]
    assert "emailKey" not in subscriber

    assert backfill_email_keys(dynamodb, TABLE_NAME) == 0
