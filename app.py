"""tenant-onboarding: every Lambda and route of the app, and nothing else.

Each declaration parses its input in a line or two and hands it to
``chalicelib``; see docs/workflow.md for the flow these functions make up.
"""
import os
from typing import TYPE_CHECKING, Any

from chalice import Chalice, CognitoUserPoolAuthorizer, Rate
from chalice.app import CloudWatchEvent, Request

from chalicelib import budget, logs
from chalicelib import dependencies as deps
from chalicelib.api_headers import add_api_headers
from chalicelib.http_errors import answers

if TYPE_CHECKING:
    from chalicelib.tenant_admin import TenantAdmin

app = Chalice(app_name="tenant-onboarding")
app.register_middleware(add_api_headers, "http")  # no-store, nosniff: every answer
# API Gateway checks a Cognito ID token (401 for anyone else): admins of the
# admin pool on the admin routes, the signed-in tenant on /me. The pools'
# ARNs are the stack's own: template.json sets them (RestAPI); the local
# stack checks tokens against its own pools (scripts/local/auth.py).
admin_only = CognitoUserPoolAuthorizer("admins", provider_arns=["set in template.json"])
tenant_only = CognitoUserPoolAuthorizer("tenants", provider_arns=["set in template.json"])
# Every route, task, trigger and schedule: its AWS and Stripe calls wait only as
# long as Lambda's context says is left, so it answers (503, or an error the
# state machine retries) before its timeout (chalicelib/budget.py).
app.register_middleware(budget.per_invocation, "all")
logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
app.log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))


# --- admin API -----------------------------------------------------------------
@app.route("/tenant/finalize", methods=["POST"], authorizer=admin_only)
@answers
def finalize_onboarding() -> Any:
    from chalicelib import decisions
    from chalicelib.clock import utc_now

    request = _request()
    decision = decisions.parse_finalize_body(request.raw_body)
    caller = decisions.caller_of(request.context)
    return decisions.finalize(decision, deps.workflow(), utc_now(), caller)


@app.route("/tenants", methods=["GET"], authorizer=admin_only)
@answers
def list_tenants() -> Any:
    return _tenant_admin().list(_request().query_params)


@app.route("/tenants/counts", methods=["GET"], authorizer=admin_only)
@answers
def count_tenants() -> Any:
    return _tenant_admin().counts()


@app.route("/tenants/{tenant_id}", methods=["GET"], authorizer=admin_only)
@answers
def show_tenant(tenant_id: str) -> Any:
    return _tenant_admin().show(tenant_id)


@app.route("/tenants/{tenant_id}/decision", methods=["POST"], authorizer=admin_only)
@answers
def decide_tenant(tenant_id: str) -> Any:
    from chalicelib.clock import utc_now
    from chalicelib.decisions import caller_of

    request = _request()
    return _tenant_admin().decide(
        tenant_id, request.raw_body, caller_of(request.context), utc_now()
    )


@app.route("/tenants/{tenant_id}/retry", methods=["POST"], authorizer=admin_only)
@answers
def retry_tenant(tenant_id: str) -> Any:
    from chalicelib.clock import utc_now
    from chalicelib.decisions import caller_of

    return _tenant_admin().retry(tenant_id, caller_of(_request().context), utc_now())


@app.route("/tenants/{tenant_id}/offboarding", methods=["POST"], authorizer=admin_only)
@answers
def offboard_tenant(tenant_id: str) -> Any:
    from chalicelib.clock import utc_now
    from chalicelib.decisions import caller_of

    request = _request()
    return _tenant_admin().offboard(
        tenant_id, request.raw_body, caller_of(request.context), utc_now(), deps.offboarding()
    )


def _request() -> Request:
    """The request a route is answering (Chalice sets it before every route call)."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no request is being answered")
    return request


def _tenant_admin() -> "TenantAdmin":
    from chalicelib.tenant_admin import TenantAdmin

    return TenantAdmin(deps.tenants(), deps.workflow())


# The pages (built by `make assets` from web/): public, like any web page; what
# they show comes from the routes above and /me, with the signed-in user's token.
@app.route("/signup", methods=["GET"])
def signup_page() -> Any:
    from chalicelib import pages

    return pages.page("signup", _request().headers.get("if-none-match"))


@app.route("/admin", methods=["GET"])
def admin_page() -> Any:
    from chalicelib import pages

    return pages.page("admin", _request().headers.get("if-none-match"))


@app.route("/assets/{name}", methods=["GET"])
def page_asset(name: str) -> Any:
    from chalicelib import pages

    return pages.asset(name, _request().headers.get("if-none-match"))


# --- the tenant's own view, and what the pages need -------------------------------
@app.route("/me", methods=["GET"], authorizer=tenant_only)
@answers
def my_onboarding() -> Any:
    from chalicelib.tenant_admin import tenant_view

    return tenant_view(deps.tenants(), _request().context)


@app.route("/me/subscribers", methods=["GET"], authorizer=tenant_only)
@answers
def my_subscribers() -> Any:
    from chalicelib.my_subscribers import caller_tenant

    request = _request()
    return deps.my_subscribers().listing(caller_tenant(request.context), request.query_params)


@app.route("/me/subscribers", methods=["POST"], authorizer=tenant_only)
@answers
def add_my_subscriber() -> Any:
    from chalicelib.my_subscribers import caller_tenant

    request = _request()
    return deps.my_subscribers().add(caller_tenant(request.context), request.raw_body)


@app.route("/me/subscribers/import", methods=["POST"], authorizer=tenant_only,
           content_types=["application/json", "text/csv", "text/plain"])
@answers
def import_my_subscribers() -> Any:
    from chalicelib.my_subscribers import caller_tenant

    request = _request()
    return deps.my_subscribers().import_rows(
        caller_tenant(request.context), request.raw_body, request.headers.get("content-type"))


@app.route("/me/subscribers/{email}", methods=["DELETE"], authorizer=tenant_only)
@answers
def remove_my_subscriber(email: str) -> Any:
    from chalicelib.my_subscribers import caller_tenant

    return deps.my_subscribers().remove(caller_tenant(_request().context), email)


@app.route("/config", methods=["GET"])
def public_config() -> Any:
    from chalicelib.settings import public_config

    return public_config()


# --- Cognito triggers ---------------------------------------------------------
@app.lambda_function(name="pre_sign_up")
def pre_sign_up(event: dict[str, Any], context: Any) -> Any:
    from chalicelib.signup import check_sign_up

    return check_sign_up(event)


@app.lambda_function(name="post_confirmation")
def post_confirmation(event: dict[str, Any], context: Any) -> Any:
    from chalicelib.signup import tenant_from_confirmation

    tenant = tenant_from_confirmation(event)
    if tenant is not None:
        deps.workflow().start(tenant)
    return event


# --- nothing stays stuck -----------------------------------------------------------
@app.schedule(Rate(15, unit=Rate.MINUTES), name="reconcile")
def reconcile(event: CloudWatchEvent) -> dict[str, int]:
    return deps.reconciler().run()


# --- state machine tasks (statemachine.json) -----------------------------------
@app.lambda_function(name="create_tenant_record")
def create_tenant_record(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.create_tenant_record(event, deps.tenants(), deps.settings())


@app.lambda_function(name="create_stripe_customer")
def create_stripe_customer(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.create_stripe_customer(event, deps.tenants(), deps.billing())


@app.lambda_function(name="update_tenant_with_stripe_id")
def update_tenant_with_stripe_id(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.update_tenant_with_stripe_id(event, deps.tenants())


@app.lambda_function(name="create_contact_list")
def create_contact_list(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.create_contact_list(event, deps.tenants(), deps.contact_lists())


@app.lambda_function(name="await_decision")
def await_decision(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.await_decision(event, deps.tenants(), deps.publisher())


@app.lambda_function(name="update_status_and_notify")
def update_status_and_notify(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.update_status_and_notify(event, deps.outcomes())


@app.lambda_function(name="release_tenant_resources")
def release_tenant_resources(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.release_tenant_resources(event, deps.releases())


# --- offboarding tasks (offboarding.json) ------------------------------------------
@app.lambda_function(name="finish_offboarding")
def finish_offboarding(event: dict[str, Any], context: Any) -> Any:
    from chalicelib import steps

    return steps.finish_offboarding(event, deps.offboardings())
