"""The subscriber store at size, on the local stack (for make bench; figures, not a test).

    python -m scripts.bench.subscribers            # a stack of its own, SES quotas enforced

- 10,000 subscribers imported into one tenant in 10 calls of 1,000 rows
  (POST /me/subscribers/import, with the tenant's real ID token): each call's
  wall time, the record's count (exactly 10,000), and the DynamoDB write
  units it takes in AWS: moto reports no real consumed capacity, so they are
  counted by DynamoDB's sizing rule (an item's attribute names and values, 1
  KB a unit, twice for a transactional write) from the items as stored.
- 50 concurrent adds of the same 10 emails (POST /me/subscribers, 50 clients
  at once): the count must be 10.
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

from scripts.bench.load import PASSWORD, LoadRun
from scripts.local.child import ChildStack

ROWS_PER_CALL = 1000
CALLS = 10
TRANSACTION_SUBSCRIBERS = 99  # chalicelib/subscribers.py: 99 items and the counter


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


def write_units(item: dict[str, Any], transactional: bool = True) -> int:
    return math.ceil(item_bytes(item) / 1024) * (2 if transactional else 1)


def request(url: str, token: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": token, "Content-Type": "application/json"})
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
    tenant_id, token = active_tenant(run, "import")
    calls: list[dict[str, Any]] = []
    for call in range(CALLS):
        rows = [{"email": f"Subscriber{call * ROWS_PER_CALL + n}@Example.com", "name": f"Reader {n}"}
                for n in range(ROWS_PER_CALL)]
        began = time.perf_counter()
        status, answer = request(f"{api}/me/subscribers/import", token, "POST", rows)
        calls.append({"status": status, "seconds": time.perf_counter() - began,
                      "added": (answer or {}).get("added")})
    record = run.ddb.get_item(TableName=outputs["tableName"], ConsistentRead=True,
                              Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}})["Item"]
    items: list[dict[str, Any]] = []
    for page in run.ddb.get_paginator("query").paginate(
            TableName=outputs["tableName"], KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"{tenant_id}#subscribers"}}):
        items += page["Items"]
    transactions = math.ceil(len(items) / TRANSACTION_SUBSCRIBERS)
    units = sum(write_units(item) for item in items) + transactions * write_units(record)
    # 50 concurrent adds of the same 10 emails
    same_id, same_token = active_tenant(run, "concurrent")
    began = time.perf_counter()
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(
            lambda n: request(f"{api}/me/subscribers", same_token, "POST",
                              {"email": f"same{n % 10}@example.com"}), range(50)))
    concurrent_seconds = time.perf_counter() - began
    _, listed = request(f"{api}/me/subscribers?limit=100", same_token)
    return {
        "importCalls": len(calls),
        "importStatuses": sorted({c["status"] for c in calls}),
        "importSecondsEach": [round(c["seconds"], 2) for c in calls],
        "importSecondsTotal": round(sum(c["seconds"] for c in calls), 2),
        "subscribersCounted": int(record["subscribers"]["N"]),
        "subscriberItems": len(items),
        "transactions": transactions,
        "writeUnits": units,
        "writeUnitsPerSubscriber": round(units / max(len(items), 1), 2),
        "concurrentAdds": len(answers),
        "concurrentStatuses": {str(code): sum(1 for c, _ in answers if c == code)
                               for code in sorted({c for c, _ in answers})},
        "concurrentCount": listed["count"],
        "concurrentListed": len(listed["subscribers"]),
        "concurrentSeconds": round(concurrent_seconds, 2),
    }


def run_with_own_stack() -> dict[str, Any]:
    """The measurements, on a stack of their own with SES's quotas enforced."""
    state_dir = Path(tempfile.mkdtemp(prefix="tenant-onboarding-subscribers-")) / "state"
    with ChildStack(state_dir, ready_seconds=90, LOCAL_ENFORCE_SES_QUOTAS="1",
                    LOCAL_RECONCILE_SECONDS="0") as stack:
        report = measure(stack.outputs, state_dir)
    report["exact"] = (report["subscribersCounted"] == report["subscriberItems"]
                       == CALLS * ROWS_PER_CALL
                       and report["concurrentCount"] == 10 == report["concurrentListed"])
    return report


def main() -> int:
    report = run_with_own_stack()
    print(json.dumps(report, indent=2))
    return 0 if report["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
