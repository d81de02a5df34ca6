"""SES v2 as AWS has it, on moto (scripts/local/patching.py): contact lists and tenants.

Contact lists: moto silently replaces a contact list created twice, and has
no quotas. AWS answers AlreadyExistsException to the first, and (SES
developer guide, "Using list management") allows ONE contact list per
account and Region and at most 20 topics per list, answering
LimitExceededException beyond them.

Tenants: moto has none. AWS's CreateTenant, GetTenant, ListTenants,
DeleteTenant and CreateTenantResourceAssociation are answered here as AWS
answers them: AlreadyExistsException
for a name taken, NotFoundException for a name unknown, BadRequestException
for a name SES refuses, and, past SES's default quota of 10,000 tenants per
account and Region, LimitExceededException. (10,000: the figure
docs/contact-lists.md gives; not confirmed on SES's quotas page, see there.)

Sending (SendEmail): moto sends with any TenantName, even one that does not
exist; AWS answers NotFoundException. Each message sent is also handed to
``deliver_mail_to``'s outbox (the local stack's .local/outbox.jsonl): to,
subject, the text body, sentAt, from and the SES tenant.

``reproduce_ses_contact_lists`` makes moto do all of that; the quotas only
when asked (LOCAL_ENFORCE_SES_QUOTAS=1 for the local stack).
"""
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from scripts.local.patching import add, replace

MAX_CONTACT_LISTS = 1
MAX_TOPICS_PER_LIST = 20
MAX_TENANTS = 10_000  # SES's default per account and Region (adjustable; docs/contact-lists.md)
TENANT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# CreateTenant, GetTenant, ListTenants, DeleteTenant, CreateTenantResourceAssociation
TENANT_PATHS = ("", "/get", "/list", "/delete", "/resources")
_state: dict[str, bool] = {"quotas": False}
_outboxes: list[Callable[[dict[str, Any]], None]] = []  # where sent mail goes (local stack)


def deliver_mail_to(outbox: Callable[[dict[str, Any]], None] | None) -> None:
    """Hand every message SES sends to ``outbox`` from now on (None: to nowhere)."""
    _outboxes[:] = [outbox] if outbox else []


def reproduce_ses_contact_lists(enforce_quotas: bool) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.sesv2.models import SESV2Backend

    _state["quotas"] = enforce_quotas

    class SesError(JsonRESTError):
        def __init__(self, code: str, message: str, status: int) -> None:
            super().__init__(code, message)
            self.code = status

    def refuse_existing_and_beyond_quota(moto_create: Callable[..., Any]) -> Callable[..., Any]:
        def create_contact_list(backend: Any, params: dict[str, Any]) -> None:
            existing = backend.core_backend.contacts_lists
            if params["ContactListName"] in existing:
                raise SesError("AlreadyExistsException", "List already exists.", 400)
            if _state["quotas"]:
                if len(existing) >= MAX_CONTACT_LISTS:
                    raise SesError(
                        "LimitExceededException",
                        "Maximum number of contact lists per account reached.",
                        400,
                    )
                _check_topics(params.get("Topics") or [], SesError)
            return moto_create(backend, params)

        return create_contact_list

    def refuse_beyond_quota(moto_update: Callable[..., Any]) -> Callable[..., Any]:
        def update_contact_list(backend: Any, name: str, params: dict[str, Any]) -> None:
            if _state["quotas"]:
                _check_topics(params.get("Topics") or [], SesError)
            return moto_update(backend, name, params)

        return update_contact_list

    replace(SESV2Backend, "create_contact_list", refuse_existing_and_beyond_quota)
    replace(SESV2Backend, "update_contact_list", refuse_beyond_quota)
    emulate_ses_tenants(SesError)


def emulate_ses_tenants(error: Any) -> None:
    """SES tenants, kept on moto's SES v2 backend of the account and Region
    (so a new mock or a reset forgets them with the rest)."""
    from moto.sesv2.responses import SESV2Response

    def tenants_of(response: Any) -> dict[str, dict[str, Any]]:
        kept: dict[str, dict[str, Any]] = response.sesv2_backend.__dict__.setdefault(
            "_local_tenants", {})
        return kept

    def named(response: Any, name: Any) -> dict[str, Any]:
        found = tenants_of(response).get(name) if isinstance(name, str) else None
        if found is None:
            raise error("NotFoundException", f"Tenant {name} does not exist.", 404)
        return found

    def create_tenant(response: Any) -> str:
        params = json.loads(response.body or "{}")
        name = params.get("TenantName")
        if not isinstance(name, str) or not TENANT_NAME.match(name):
            raise error("BadRequestException", "TenantName must be 1-64 letters, digits, "
                        "hyphens or underscores.", 400)
        tenants = tenants_of(response)
        if name in tenants:
            raise error("AlreadyExistsException", f"Tenant {name} already exists.", 400)
        if _state["quotas"] and len(tenants) >= MAX_TENANTS:
            raise error("LimitExceededException",
                        f"Maximum number of tenants ({MAX_TENANTS}) reached.", 400)
        tenant_id = f"tn-{uuid.uuid4().hex[:24]}"
        tenants[name] = {
            "TenantName": name, "TenantId": tenant_id,
            "TenantArn": f"arn:aws:ses:{response.region}:{response.current_account}:"
                         f"tenant/{name}/{tenant_id}",
            "CreatedTimestamp": time.time(), "SendingStatus": "ENABLED",
            "Tags": list(params.get("Tags") or []),
        }
        return json.dumps(tenants[name])

    def get_tenant(response: Any) -> str:
        return json.dumps({"Tenant": named(response, json.loads(response.body or "{}").get("TenantName"))})

    def delete_tenant(response: Any) -> str:
        name = json.loads(response.body or "{}").get("TenantName")
        named(response, name)
        del tenants_of(response)[name]
        response.sesv2_backend.__dict__.get("_local_tenant_resources", {}).pop(name, None)
        return json.dumps({})

    def create_tenant_resource_association(response: Any) -> str:
        params = json.loads(response.body or "{}")
        name = named(response, params.get("TenantName"))["TenantName"]
        associated: dict[str, list[Any]] = response.sesv2_backend.__dict__.setdefault(
            "_local_tenant_resources", {})
        resources = associated.setdefault(name, [])
        if params.get("ResourceArn") in resources:
            raise error("AlreadyExistsException", "The resource is already associated with "
                        "the tenant.", 400)
        resources.append(params.get("ResourceArn"))
        return json.dumps({})

    def list_tenants(response: Any) -> str:
        params = json.loads(response.body or "{}")
        size = int(params.get("PageSize") or 1000)
        names = sorted(tenants_of(response))
        start = names.index(params["NextToken"]) if params.get("NextToken") in names else 0
        page = names[start:start + size]
        listed = [{k: tenants_of(response)[n][k] for k in
                   ("TenantName", "TenantId", "TenantArn", "CreatedTimestamp")} for n in page]
        answer: dict[str, Any] = {"Tenants": listed}
        if start + size < len(names):
            answer["NextToken"] = names[start + size]
        return json.dumps(answer)

    # moto's server routes a request by its path (its catch-all /v2/.* is not
    # a pattern there): the tenant operations' paths need routes of their own
    from moto.sesv2 import urls

    def with_tenant_routes(moto_paths: dict[str, Any]) -> dict[str, Any]:
        return {**moto_paths, **{f"{{0}}/v2/email/tenants{suffix}$": SESV2Response.dispatch
                                 for suffix in TENANT_PATHS}}

    def sending_in_a_tenant(moto_send: Callable[..., Any]) -> Callable[..., Any]:
        def send_email(response: Any) -> str:
            params = json.loads(response.body or "{}")
            if params.get("TenantName") is not None:
                named(response, params["TenantName"])
            answer: str = moto_send(response)
            _deliver(params)
            return answer

        return send_email

    replace(SESV2Response, "send_email", sending_in_a_tenant)
    replace(urls, "url_paths", with_tenant_routes)
    add(SESV2Response, "create_tenant", create_tenant)
    add(SESV2Response, "get_tenant", get_tenant)
    add(SESV2Response, "delete_tenant", delete_tenant)
    add(SESV2Response, "list_tenants", list_tenants)
    add(SESV2Response, "create_tenant_resource_association", create_tenant_resource_association)


def _deliver(params: dict[str, Any]) -> None:
    """A message SES took, as the outbox keeps it: one line per recipient."""
    simple = (params.get("Content") or {}).get("Simple") or {}
    body = simple.get("Body") or {}
    text = (body.get("Text") or body.get("Html") or {}).get("Data", "")
    sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for to in (params.get("Destination") or {}).get("ToAddresses") or []:
        message = {"to": to, "subject": (simple.get("Subject") or {}).get("Data", ""),
                   "body": text, "sentAt": sent_at, "from": params.get("FromEmailAddress"),
                   "sesTenant": params.get("TenantName")}
        for outbox in list(_outboxes):
            outbox(message)


def _check_topics(topics: Any, error: Any) -> None:
    if len(topics) > MAX_TOPICS_PER_LIST:
        raise error(
            "LimitExceededException",
            f"A contact list can have at most {MAX_TOPICS_PER_LIST} topics.",
            400,
        )
