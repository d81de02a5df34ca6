"""SES v2 contact lists as AWS has them, on moto (which is pinned).

moto silently replaces a contact list created twice, and has no quotas. AWS
answers AlreadyExistsException to the first, and (SES developer guide,
"Using list management") allows ONE contact list per account and Region and
at most 20 topics per list, answering LimitExceededException beyond them.
``reproduce_ses_contact_lists`` makes moto do the same; the quotas only when
asked (LOCAL_ENFORCE_SES_QUOTAS=1 for the local stack), since the seed's
list-per-tenant mode cannot onboard a second tenant under them.
"""
from collections.abc import Callable
from typing import Any

from scripts.local.patching import replace

MAX_CONTACT_LISTS = 1
MAX_TOPICS_PER_LIST = 20
_state: dict[str, bool] = {"quotas": False}


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


def _check_topics(topics: Any, error: Any) -> None:
    if len(topics) > MAX_TOPICS_PER_LIST:
        raise error(
            "LimitExceededException",
            f"A contact list can have at most {MAX_TOPICS_PER_LIST} topics.",
            400,
        )
