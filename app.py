"""tenant-onboarding: every Lambda and route of the app, and nothing else.

Each declaration parses its input in a line or two and hands it to
``chalicelib``; see README.md for the flow these functions make up.
"""
import os

from chalice import Chalice, CognitoUserPoolAuthorizer, Rate

from chalicelib import dependencies as deps
from chalicelib import logs
from chalicelib.http_errors import answers

app = Chalice(app_name="tenant-onboarding")
# API Gateway checks a Cognito ID token (401 for anyone else): admins of the
# admin pool on the admin routes, the signed-in tenant on /me. The pools'
# ARNs are the stack's own: template.json sets them (RestAPI); the local
# stack checks tokens against its own pools (scripts/local/auth.py).
admin_only = CognitoUserPoolAuthorizer("admins", provider_arns=["set in template.json"])
tenant_only = CognitoUserPoolAuthorizer("tenants", provider_arns=["set in template.json"])
logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
app.log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))


# --- admin API -----------------------------------------------------------------
@app.route("/tenant/finalize", methods=["POST"], authorizer=admin_only)
@answers
def finalize_onboarding():
    from chalicelib import decisions
    from chalicelib.steps import utc_now

    request = app.current_request
    decision = decisions.parse_finalize_body(request.raw_body)
    caller = decisions.caller_of(request.context)
    return decisions.finalize(decision, deps.workflow(), utc_now(), caller)


@app.route("/tenants", methods=["GET"], authorizer=admin_only)
@answers
def list_tenants():
    return _tenant_admin().list(app.current_request.query_params)


@app.route("/tenants/{tenant_id}", methods=["GET"], authorizer=admin_only)
@answers
def show_tenant(tenant_id):
    return _tenant_admin().show(tenant_id)


@app.route("/tenants/{tenant_id}/decision", methods=["POST"], authorizer=admin_only)
@answers
def decide_tenant(tenant_id):
    from chalicelib.decisions import caller_of
    from chalicelib.steps import utc_now

    request = app.current_request
    return _tenant_admin().decide(
        tenant_id, request.raw_body, caller_of(request.context), utc_now()
    )


@app.route("/tenants/{tenant_id}/retry", methods=["POST"], authorizer=admin_only)
@answers
def retry_tenant(tenant_id):
    from chalicelib.decisions import caller_of
    from chalicelib.steps import utc_now

    return _tenant_admin().retry(tenant_id, caller_of(app.current_request.context), utc_now())


@app.route("/tenants/{tenant_id}/offboarding", methods=["POST"], authorizer=admin_only)
@answers
def offboard_tenant(tenant_id):
    from chalicelib.decisions import caller_of
    from chalicelib.steps import utc_now

    request = app.current_request
    return _tenant_admin().offboard(
        tenant_id, request.raw_body, caller_of(request.context), utc_now(), deps.offboarding()
    )


def _tenant_admin():
    from chalicelib.tenant_admin import TenantAdmin

    return TenantAdmin(deps.tenants(), deps.workflow())


# The pages (built by `make assets` from web/): public, like any web page; what
# they show comes from the routes above and /me, with the signed-in user's token.
@app.route("/signup", methods=["GET"])
def signup_page():
    from chalicelib import pages

    return pages.page("signup", app.current_request.headers.get("if-none-match"))


@app.route("/admin", methods=["GET"])
def admin_page():
    from chalicelib import pages

    return pages.page("admin", app.current_request.headers.get("if-none-match"))


@app.route("/assets/{name}", methods=["GET"])
def page_asset(name):
    from chalicelib import pages

    return pages.asset(name, app.current_request.headers.get("if-none-match"))


# --- the tenant's own view, and what the pages need -------------------------------
@app.route("/me", methods=["GET"], authorizer=tenant_only)
@answers
def my_onboarding():
    from chalicelib.tenant_admin import tenant_view

    return tenant_view(deps.tenants(), app.current_request.context)


@app.route("/config", methods=["GET"])
def public_config():
    from chalicelib.settings import public_config

    return public_config()


# --- Cognito triggers ---------------------------------------------------------
@app.lambda_function(name="pre_sign_up")
def pre_sign_up(event, context):
    from chalicelib.signup import check_sign_up

    return check_sign_up(event)


@app.lambda_function(name="post_confirmation")
def post_confirmation(event, context):
    from chalicelib.signup import tenant_from_confirmation

    tenant = tenant_from_confirmation(event)
    if tenant is not None:
        deps.workflow().start(tenant)
    return event


# --- nothing stays stuck -----------------------------------------------------------
@app.schedule(Rate(15, unit=Rate.MINUTES), name="reconcile")
def reconcile(event):
    return deps.reconciler().run()


# --- state machine tasks (statemachine.json) -----------------------------------
@app.lambda_function(name="create_tenant_record")
def create_tenant_record(event, context):
    from chalicelib import steps

    return steps.create_tenant_record(event, deps.tenants(), deps.settings())


@app.lambda_function(name="create_stripe_customer")
def create_stripe_customer(event, context):
    from chalicelib import steps

    return steps.create_stripe_customer(event, deps.tenants(), deps.billing())


@app.lambda_function(name="update_tenant_with_stripe_id")
def update_tenant_with_stripe_id(event, context):
    from chalicelib import steps

    return steps.update_tenant_with_stripe_id(event, deps.tenants())


@app.lambda_function(name="create_contact_list")
def create_contact_list(event, context):
    from chalicelib import steps

    return steps.create_contact_list(event, deps.tenants(), deps.contact_lists())


@app.lambda_function(name="await_decision")
def await_decision(event, context):
    from chalicelib import steps

    return steps.await_decision(event, deps.tenants(), deps.publisher())


@app.lambda_function(name="update_status_and_notify")
def update_status_and_notify(event, context):
    from chalicelib import steps

    return steps.update_status_and_notify(event, deps.tenants(), deps.publisher())


@app.lambda_function(name="release_tenant_resources")
def release_tenant_resources(event, context):
    from chalicelib import steps

    return steps.release_tenant_resources(event, deps.releases())


# --- offboarding tasks (offboarding.json) ------------------------------------------
@app.lambda_function(name="finish_offboarding")
def finish_offboarding(event, context):
    from chalicelib import steps

    return steps.finish_offboarding(event, deps.tenants(), deps.publisher())
