"""The memory sweep's arithmetic (make bench): Lambda's CPU share and price."""
import pytest

from scripts.bench import memory


@pytest.mark.parametrize(("size", "quota"), [(128, 7236), (1024, 57886), (1769, 100_000)])
def test_a_sizes_cpu_quota_is_its_share_of_one_core_per_period(size, quota):
    assert memory.cpu_quota_us(size) == quota


def test_a_full_core_costs_per_gb_second_and_per_request():
    # one second at 1,024 MB: one GB-second, and one request
    assert memory.invocation_cost(1000, 1024) == pytest.approx(0.0000166667 + 0.20 / 1_000_000)


def test_the_cost_per_thousand_counts_each_function_once_and_not_the_reconciler():
    table = {"create_tenant_record": {512: 200.0, 1024: 100.0},
             "reconcile": {512: 9_000.0, 1024: 9_000.0}}

    at_1024 = memory.cost_per_thousand(table, {"create_tenant_record": 1024, "reconcile": 1024})

    assert at_1024 == pytest.approx(1000 * memory.invocation_cost(100.0, 1024))
    # half the time at half the memory: the same compute, the same request
    assert memory.cost_per_thousand(table, {"create_tenant_record": 512, "reconcile": 512}) \
        == pytest.approx(at_1024)


def test_the_chosen_sizes_are_read_per_function_from_the_built_template():
    template = {"Globals": {"Function": {"MemorySize": 512}}, "Resources": {
        "APIHandler": {"Type": "AWS::Serverless::Function",
                       "Properties": {"Handler": "app.app", "MemorySize": 1024}},
        "PreSignUp": {"Type": "AWS::Serverless::Function",
                      "Properties": {"Handler": "app.pre_sign_up"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}}}}

    assert memory.chosen_sizes(template) == {"api_handler": 1024, "pre_sign_up": 512}
