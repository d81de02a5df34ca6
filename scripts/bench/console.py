"""The admin console's API with 1,000 tenants: what the console waits for.

    python -m scripts.bench.console      # its own local stack; prints figures for docs/benchmarks.md

Seeds 1,000 tenant records straight into the table (as the record writer
stores them), then times, with an admin's token over HTTP: the first paint's
requests (the counts and the first page of the waiting tab, at once), every
page of 50 of one status holding 1,000 tenants, and an email search.
"""
import json
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TENANTS = 1000


def get(api: str, token: str, path: str) -> Any:
    request = urllib.request.Request(api + path, headers={"Authorization": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = call()
    return (time.perf_counter() - started) * 1000, answer


def main() -> int:
    from scripts.local.child import ChildStack
    from scripts.local.client import local_session, new_local_admin

    state = Path(tempfile.mkdtemp()) / "state"
    stack = ChildStack(state, ready_seconds=60)
    stack.start()
    try:
        outputs, api = stack.outputs, stack.outputs["apiUrl"]
        ddb = local_session(outputs["region"]).client("dynamodb", endpoint_url=outputs["awsEndpoint"])
        items = [{"pk": {"S": str(uuid.uuid4())}, "sk": {"S": "tenant"}, "status": {"S": "active"},
                  "email": {"S": f"bench-{n:04d}@example.com"},
                  "emailKey": {"S": f"bench-{n:04d}@example.com"},
                  "name": {"S": f"Bench {n:04d}"},
                  "createdAt": {"S": f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"},
                  "updatedAt": {"S": f"2026-02-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"}}
                 for n in range(TENANTS)]
        for start in range(0, TENANTS, 25):
            ddb.batch_write_item(RequestItems={outputs["tableName"]: [
                {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
        token = new_local_admin(outputs, state, "bench-ops@example.com")
        get(api, token, "/tenants/counts")  # warm
        results: dict[str, Any] = {}
        with ThreadPoolExecutor(2) as pool:
            ms, _ = timed(lambda: list(pool.map(lambda p: get(api, token, p),
                                                ["/tenants/counts", "/tenants?status=onboarding&limit=50"])))
        results["first paint: counts + first page, at once (ms)"] = round(ms)
        for sort in ("created", "updated"):
            pages, token_, started = 0, None, time.perf_counter()
            while True:
                path = f"/tenants?status=active&sort={sort}&limit=50"
                path += f"&nextToken={token_}" if token_ else ""
                answer = get(api, token, path)
                pages += 1
                token_ = answer["nextToken"]
                if not token_:
                    break
            total = (time.perf_counter() - started) * 1000
            results[f"1,000 tenants page by page, sort={sort}"] = (
                f"{pages} pages, {total:.0f} ms, {total / pages:.0f} ms a page")
        ms, answer = timed(lambda: get(api, token, "/tenants?email=BENCH-0777&match=prefix"))
        results["email search (prefix), answer (ms)"] = f"{ms:.0f} ms, {len(answer['tenants'])} found"
        ms, answer = timed(lambda: get(api, token, "/tenants?email=bench-0&limit=50"))
        results["email search, 50 of 1,000 matching (ms)"] = f"{ms:.0f} ms"
        print(json.dumps(results, indent=1))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
