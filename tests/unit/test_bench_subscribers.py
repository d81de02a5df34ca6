"""The subscriber bench's write units (make bench): DynamoDB's rules, on small known cases."""
from scripts.bench import subscribers as bench
from tests.unit.conftest import TENANT_ID

TABLE = bench.table_definition()  # template.json's tenant table and its indexes


def subscriber(n: int, name: str = "Reader") -> dict:
    """A subscriber item as chalicelib/subscribers.py stores it."""
    email = f"s{n}@example.com"
    return {"pk": {"S": f"{TENANT_ID}#subscribers"}, "sk": {"S": email},
            "email": {"S": email}, "subscribedAt": {"S": "2026-12-03T10:00:00.000Z"},
            "subscriberOf": {"S": TENANT_ID}, "name": {"S": name}}


RECORD = {"pk": {"S": TENANT_ID}, "sk": {"S": "tenant"}, "status": {"S": "active"},
          "email": {"S": "ada@example.com"}, "emailKey": {"S": "ada@example.com"},
          "name": {"S": "Ada Ltd"}, "createdAt": {"S": "2026-12-03T09:00:00.000Z"},
          "updatedAt": {"S": "2026-12-03T09:30:00.000Z"}, "subscribers": {"N": "0"}}


def imported(calls: int, rows: int, name: str = "Reader") -> dict:
    keys = [[f"s{c * rows + n}@example.com" for n in range(rows)] for c in range(calls)]
    items = {key: subscriber(c * rows + n, name) for c, call in enumerate(keys)
             for n, key in enumerate(call)}
    record = {**RECORD, "subscribers": {"N": str(calls * rows)}}
    return bench.import_write_units(keys, items, record, TABLE)


def test_a_call_of_1000_rows_is_11_transactions_not_a_share_of_102():
    calls = [[f"k{c}-{n}" for n in range(1000)] for c in range(10)]
    assert len(bench.transactions_of(calls)) == 110
    assert [len(t) for t in bench.transactions_of([[f"k{n}" for n in range(1000)]])] == [99] * 10 + [10]


def test_a_row_sent_twice_in_a_call_is_written_once():
    assert bench.transactions_of([["a", "b", "a"]]) == [["a", "b"]]


def test_two_calls_of_100_small_subscribers_cost_2_a_put_1_an_index_entry_and_2_a_counter():
    # 100 rows a call: 99 + 1, so 4 transactions; each subscriber (under 1 KB)
    # 2 (transactional put) + 1 (bySubscribedAt, once); each counter update 2
    assert imported(2, 100) == {"transactions": 4, "tableUnits": 200 * 2 + 4 * 2,
                                "indexUnits": 200, "writeUnits": 608}


def test_a_subscriber_over_1_kb_costs_2_units_a_kb_in_the_table_and_1_a_kb_in_its_index():
    big = imported(1, 1, name="x" * 1000)  # the item is just over 1 KB; its entry projects the name
    assert bench.item_bytes(subscriber(0, "x" * 1000)) > bench.KB
    assert big == {"transactions": 1, "tableUnits": 2 * 2 + 2, "indexUnits": 2, "writeUnits": 8}


def test_an_attribute_the_index_does_not_project_counts_in_the_table_only():
    item = {**subscriber(0), "notes": {"S": "y" * 2000}}
    assert bench.index_write_units(TABLE, None, item) == 1  # bySubscribedAt: keys, email, name
    assert bench.kb_units(item) == 3


def test_the_counters_update_changes_no_index_of_the_record():
    after = {**RECORD, "subscribers": {"N": "99"}}
    assert bench.index_write_units(TABLE, RECORD, after) == 0


def test_a_change_of_an_index_key_costs_a_delete_and_a_put_and_of_a_projection_one_write():
    # the record's status is byStatus's key (its entry moves: a delete and a
    # put) and one of byEmail's projected attributes (its entry is rewritten)
    onboarding = {**RECORD, "status": {"S": "onboarding"}}
    assert bench.index_write_units(TABLE, onboarding, RECORD) == 2 + 1
