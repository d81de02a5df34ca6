"""The subscriber store at size, on the local stack (for make bench; figures, not a test).

    python -m scripts.bench.subscribers            # a stack of its own, SES quotas enforced

- 10,000 subscribers imported into one tenant in 10 calls of 1,000 rows
  (POST /me/subscribers/import, with the tenant's real ID token): each call's
  wall time, the record's count (exactly 10,000), and the DynamoDB write
  units it takes in AWS. moto reports no real consumed capacity, so they are
  counted by DynamoDB's rules (``import_write_units``) from the items as
  stored, the transactions as the import makes them (each call's rows, 99 a
  transaction with the counter: 11 for 1,000 rows) and the table's indexes
  as template.json declares them:
  * a write's size is its item's attribute names and values, 1 unit a KB
    started; an update's is the larger of the item before and after;
  * a write in a transaction costs twice (DynamoDB prepares and commits each
    item of a transaction: "Capacity management for transactions");
  * each global secondary index the write changes costs 1 unit a KB of its
    entry (the table's key, the index's key and the projected attributes),
    once: a transaction's changes reach an index after it commits, so the
    doubling does not apply to them; an index whose entry the write leaves
    as it was costs nothing; a change of the index's key costs a delete and
    a put ("Provisioned throughput considerations for GSIs").
- 50 concurrent adds of the same 10 emails (POST /me/subscribers, 50 clients
  at once, each retrying a 503 after its Retry-After as a client should), run
  first, while the table is small: the count must be 10.
"""
import json
import math
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chalicelib.subscribers import TRANSACTION_SUBSCRIBERS, subscriber_key
from scripts.bench.load import PASSWORD, LoadRun, post_as_a_client_would
from scripts.deploy.template import load_template
from scripts.local.child import ChildStack

ROWS_PER_CALL = 1000
CALLS = 10
TABLE = "TenantTable"  # template.json's logical id of the tenant table
KB = 1024


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item (strings and numbers, as ours are)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            size += 1 + math.ceil(len(value["N"].lstrip("-").replace(".", "")) / 2)
        else:
            size += len(json.dumps(value).encode())  # maps and lists: an upper bound
    return size


def kb_units(item: dict[str, Any] | None) -> int:
    """Write units of one write of ``item``: 1 a KB started (an empty write still costs 1)."""
    return max(1, math.ceil(item_bytes(item) / KB)) if item is not None else 0


def table_definition() -> dict[str, Any]:
    """The tenant table as template.json declares it: its key and its indexes."""
    table: dict[str, Any] = load_template()["Resources"][TABLE]["Properties"]
    return table


def index_entry(item: dict[str, Any] | None, index: dict[str, Any],
                table_key: list[str]) -> dict[str, Any] | None:
    """What ``index`` holds of ``item``: None when the item lacks a key attribute of it."""
    if item is None:
        return None
    index_key = [k["AttributeName"] for k in index["KeySchema"]]
    if any(name not in item for name in index_key):
        return None
    projection = index["Projection"]
    if projection["ProjectionType"] == "ALL":
        return dict(item)
    names = set(table_key) | set(index_key) | set(projection.get("NonKeyAttributes", []))
    return {name: value for name, value in item.items() if name in names}


def index_write_units(table: dict[str, Any], before: dict[str, Any] | None,
                      after: dict[str, Any] | None) -> int:
    """Write units the table's global secondary indexes consume for one write
    that turns ``before`` into ``after`` (None: no item)."""
    table_key = [k["AttributeName"] for k in table["KeySchema"]]
    units = 0
    for index in table.get("GlobalSecondaryIndexes", []):
        old, new = (index_entry(item, index, table_key) for item in (before, after))
        if old == new:
            continue  # not in the index, or its entry unchanged: no index write
        index_key = [k["AttributeName"] for k in index["KeySchema"]]
        if old is not None and new is not None and any(old[k] != new[k] for k in index_key):
            units += kb_units(old) + kb_units(new)  # key changed: delete and put
        else:
            units += kb_units(new if new is not None else old)
    return units


def transactions_of(keys_per_call: list[list[str]]) -> list[list[str]]:
    """The transactions an import makes (chalicelib/subscribers.py add_all): each
    call's subscribers, once each, 99 a transaction with the counter."""
    transactions = []
    for keys in keys_per_call:
        unique = list(dict.fromkeys(keys))
        transactions += [unique[start:start + TRANSACTION_SUBSCRIBERS]
                         for start in range(0, len(unique), TRANSACTION_SUBSCRIBERS)]
    return transactions


def import_write_units(keys_per_call: list[list[str]], items: dict[str, dict[str, Any]],
                       record: dict[str, Any], table: dict[str, Any]) -> dict[str, int]:
    """DynamoDB's write units for an import of new subscribers (``items`` by key,
    as stored) whose calls sent ``keys_per_call``; ``record`` is the tenant
    record after it. Each transaction puts its subscribers and updates the
    counter on the record, twice each (transactional); each write's index
    entries once."""
    transactions = transactions_of(keys_per_call)
    count = int(record["subscribers"]["N"]) - sum(len(t) for t in transactions)
    table_units = index_units = 0
    for keys in transactions:
        for key in keys:
            table_units += 2 * kb_units(items[key])
            index_units += index_write_units(table, None, items[key])
        before = {**record, "subscribers": {"N": str(count)}}
        count += len(keys)
        after = {**record, "subscribers": {"N": str(count)}}
        table_units += 2 * max(kb_units(before), kb_units(after))
        index_units += index_write_units(table, before, after)
    return {"transactions": len(transactions), "tableUnits": table_units,
            "indexUnits": index_units, "writeUnits": table_units + index_units}


def request(url: str, token: str) -> tuple[int, Any]:
    """GET with the tenant's token: (status, the answer's JSON)."""
    sent = urllib.request.Request(url, headers={"Authorization": token})
    try:
        with urllib.request.urlopen(sent, timeout=120) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def active_tenant(run: LoadRun, label: str) -> tuple[str, str]:
    """A tenant signed up, approved and signed in: (tenant id, ID token)."""
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    tenant = run.sign_up(email)
    tenant["decision"] = "approved"
    run.await_token(tenant, 60)
    run.decide(tenant)
    run.await_final(tenant, 60)
    if tenant.get("final") != "active":
        raise RuntimeError(f"the tenant ended {tenant.get('final')}")
    token = run.cognito.initiate_auth(
        ClientId=run.outputs["userPoolClientId"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD})["AuthenticationResult"]["IdToken"]
    return tenant["tenantId"], token


def measure(outputs: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    run = LoadRun(outputs, state_dir, workers=50)
    api = outputs["apiUrl"]
    # 50 concurrent adds of the same 10 emails, first: the local stack's
    # transactions slow down as the table grows (moto copies it for each), and
    # DynamoDB's do not, so after the import they would measure moto.
    same_id, same_token = active_tenant(run, "concurrent")
    began = time.perf_counter()
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(
            lambda n: post_as_a_client_would(f"{api}/me/subscribers", same_token,
                                             {"email": f"same{n % 10}@example.com"}), range(50)))
    concurrent_seconds = time.perf_counter() - began
    _, listed = request(f"{api}/me/subscribers?limit=100", same_token)
    tenant_id, token = active_tenant(run, "import")
    calls: list[dict[str, Any]] = []
    keys_per_call: list[list[str]] = []
    for call in range(CALLS):
        rows = [{"email": f"Subscriber{call * ROWS_PER_CALL + n}@Example.com", "name": f"Reader {n}"}
                for n in range(ROWS_PER_CALL)]
        keys_per_call.append([subscriber_key(row["email"]) for row in rows])
        began = time.perf_counter()
        status, answer, _ = post_as_a_client_would(f"{api}/me/subscribers/import", token, rows)
        calls.append({"status": status, "seconds": time.perf_counter() - began,
                      "added": (answer or {}).get("added")})
    record = run.ddb.get_item(TableName=outputs["tableName"], ConsistentRead=True,
                              Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}})["Item"]
    items: list[dict[str, Any]] = []
    for page in run.ddb.get_paginator("query").paginate(
            TableName=outputs["tableName"], KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"{tenant_id}#subscribers"}}):
        items += page["Items"]
    units = import_write_units(keys_per_call, {item["sk"]["S"]: item for item in items},
                               record, table_definition())
    return {
        "importCalls": len(calls),
        "importStatuses": sorted({c["status"] for c in calls}),
        "importSecondsEach": [round(c["seconds"], 2) for c in calls],
        "importSecondsTotal": round(sum(c["seconds"] for c in calls), 2),
        "subscribersCounted": int(record["subscribers"]["N"]),
        "subscriberItems": len(items),
        "importAdded": sum(c["added"] or 0 for c in calls),
        "transactions": units["transactions"],
        "writeUnits": units["writeUnits"],
        "tableWriteUnits": units["tableUnits"],
        "indexWriteUnits": units["indexUnits"],
        "writeUnitsPerSubscriber": round(units["writeUnits"] / max(len(items), 1), 2),
        "concurrentAdds": len(answers),
        "concurrentStatuses": {str(code): sum(1 for c, _, _ in answers if c == code)
                               for code in sorted({c for c, _, _ in answers})},
        "concurrentRetries": sum(tries - 1 for _, _, tries in answers),
        "concurrentCount": listed["count"],
        "concurrentListed": len(listed["subscribers"]),
        "concurrentSeconds": round(concurrent_seconds, 2),
    }


def all_answered(statuses: dict[str, int]) -> bool:
    """Every add answered added (201) or already there (200), retries included."""
    return set(statuses) <= {"200", "201"}


def run_with_own_stack() -> dict[str, Any]:
    """The measurements, on a stack of their own with SES's quotas enforced."""
    state_dir = Path(tempfile.mkdtemp(prefix="tenant-onboarding-subscribers-")) / "state"
    with ChildStack(state_dir, ready_seconds=90, LOCAL_ENFORCE_SES_QUOTAS="1",
                    LOCAL_RECONCILE_SECONDS="0") as stack:
        report = measure(stack.outputs, state_dir)
    report["exact"] = (report["subscribersCounted"] == report["subscriberItems"]
                       == report["importAdded"] == CALLS * ROWS_PER_CALL
                       and report["concurrentCount"] == 10 == report["concurrentListed"]
                       and all_answered(report["concurrentStatuses"]))
    return report


def main() -> int:
    report = run_with_own_stack()
    print(json.dumps(report, indent=2))
    return 0 if report["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
