"""Give tenant records written before the byEmail index their ``emailKey``.

The record writer sets ``emailKey`` (the email, lower-cased) on every record
it creates (``TenantRepository.create``); records created before it did are
missing from the byEmail index, so the console's email search would not find
them (tenant id search and the status tabs do). ``make deploy`` runs this after
every stack update: one Scan of the table, filtered to tenant records without
the key, and a conditional write each (``TenantRepository.set_email_key``), so
it is safe to run again and to run while the app writes. Once every record has
its key the Scan finds nothing, and it writes nothing.

    python -m scripts.deploy.backfill --table tenant-onboarding-dev-tenants
"""
import argparse
from typing import Any

from chalicelib.tenants import SORT_KEY, TenantRepository


def records_without_email_key(ddb: Any, table: str) -> list[tuple[str, str]]:
    """(tenant id, email) of every tenant record that has no emailKey."""
    found: list[tuple[str, str]] = []
    scan: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :t AND attribute_not_exists(emailKey) AND attribute_exists(email)",
        "ProjectionExpression": "pk, email",
        "ExpressionAttributeValues": {":t": {"S": SORT_KEY}},
    }
    while True:
        page = ddb.scan(**scan)
        found += [(item["pk"]["S"], item["email"]["S"]) for item in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            return found
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def backfill_email_keys(ddb: Any, table: str) -> int:
    """Key every record that lacks one; how many were written."""
    tenants = TenantRepository(ddb, table)
    return sum(tenants.set_email_key(tenant_id, email)
               for tenant_id, email in records_without_email_key(ddb, table))


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m scripts.deploy.backfill",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True,
                        help="the stage's table, e.g. tenant-onboarding-dev-tenants")
    parser.add_argument("--endpoint-url", help="a local stack's AWS endpoint")
    args = parser.parse_args(argv)
    ddb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    print(f"{backfill_email_keys(ddb, args.table)} tenant record(s) given an emailKey")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
