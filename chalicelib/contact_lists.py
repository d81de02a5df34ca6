"""The tenant's place in Amazon SES list management (SES v2).

Two modes, set per stage (CONTACT_LIST_MODE):
- ``list-per-tenant``: one contact list per tenant, as the seed describes. AWS
  allows only ONE contact list per account and Region, so in a real account
  this fails from the second tenant on (ContactListQuotaReached).
- ``topic-per-tenant``: one shared list per stage, made by the first
  onboarding that needs it (not by the stack: ``AWS::SES::ContactList`` owns
  its ``Topics``, so a stack update would drop every tenant's topic); each
  tenant gets a topic on it, at most 20 topics per list. UpdateContactList
  replaces the whole topic array, so the read-modify-write happens under a
  lease lock.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chalicelib.errors import ContactListBusy, ContactListQuotaReached, aws_call, aws_error_code
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sesv2.type_defs import GetContactListResponseTypeDef, TopicTypeDef

    from chalicelib.locks import LeaseLock

logger = get_logger(__name__)

MAX_TOPICS_PER_LIST = 20


def contact_list_name(tenant_id: str) -> str:
    """Deterministic, so a retried step finds the list it already made."""
    return f"tenant-{tenant_id}"


def topic_name(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


@dataclass(frozen=True)
class ContactListPlace:
    list: str
    topic: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {"list": self.list, **({"topic": self.topic} if self.topic else {})}


class ContactListProvider(Protocol):
    """A stage's contact-list mode: the place it gives a tenant, and takes back."""

    def ensure_for_tenant(self, tenant_id: str, tenant_name: str) -> ContactListPlace:
        """Made once, however often asked."""
        ...

    def release_for_tenant(self, tenant_id: str, place: ContactListPlace) -> bool:
        """Given back; False when it was already gone."""
        ...


class ContactLists:
    """list-per-tenant: one SES contact list per tenant."""

    def __init__(self, sesv2_client: "SESV2Client") -> None:
        self._ses = sesv2_client

    def ensure_for_tenant(self, tenant_id: str, tenant_name: str) -> ContactListPlace:
        name = contact_list_name(tenant_id)
        try:
            with aws_call("SES"):
                self._ses.create_contact_list(
                    ContactListName=name,
                    Description=f"Subscribers of tenant {tenant_id}",
                )
            logger.info("created SES contact list %s", name, extra={"tenantId": tenant_id})
        except Exception as error:
            code = aws_error_code(error)
            if code == "AlreadyExistsException":
                logger.info("SES contact list %s already existed", name,
                            extra={"tenantId": tenant_id})
            elif code == "LimitExceededException":
                raise ContactListQuotaReached(
                    "the SES contact-list quota is reached: AWS allows one contact "
                    "list per account and Region; use CONTACT_LIST_MODE=topic-per-tenant"
                ) from None
            else:
                raise
        return ContactListPlace(list=name)

    def release_for_tenant(self, tenant_id: str, place: ContactListPlace) -> bool:
        """Delete the tenant's list; False when it was already gone."""
        try:
            with aws_call("SES"):
                self._ses.delete_contact_list(ContactListName=place.list)
        except Exception as error:
            if aws_error_code(error) == "NotFoundException":
                logger.info("SES contact list %s was already gone", place.list,
                            extra={"tenantId": tenant_id})
                return False
            raise
        logger.info("deleted SES contact list %s", place.list, extra={"tenantId": tenant_id})
        return True


class SharedListTopics:
    """topic-per-tenant: one topic per tenant on the stage's shared list."""

    def __init__(self, sesv2_client: "SESV2Client", list_name: str, lock: "LeaseLock") -> None:
        self._ses = sesv2_client
        self._list = list_name
        self._lock = lock

    def ensure_for_tenant(self, tenant_id: str, tenant_name: str) -> ContactListPlace:
        topic = topic_name(tenant_id)
        with self._lock.held():
            current = self._current_list(tenant_id)
            topics = current.get("Topics") or []
            if any(t.get("TopicName") == topic for t in topics):
                logger.info("topic %s already on %s", topic, self._list,
                            extra={"tenantId": tenant_id})
                return ContactListPlace(list=self._list, topic=topic)
            if len(topics) >= MAX_TOPICS_PER_LIST:
                raise ContactListQuotaReached(
                    f"the SES contact-list quota is reached: {self._list} already has "
                    f"{len(topics)} topics, the most SES allows on one list"
                )
            new_topic: TopicTypeDef = {
                "TopicName": topic,
                "DisplayName": tenant_name[:128] or topic,
                "Description": f"Newsletter of tenant {tenant_id}",
                "DefaultSubscriptionStatus": "OPT_OUT",
            }
            try:
                self._write_topics(current, [_writable(t) for t in topics] + [new_topic])
            except Exception as error:
                if aws_error_code(error) == "LimitExceededException":
                    raise ContactListQuotaReached(
                        f"the SES contact-list quota is reached: {self._list} takes no "
                        "more topics"
                    ) from None
                raise
            # Had the lease run out mid-update, another onboarding could have
            # written its own topic array over ours: check, and retry if so.
            with aws_call("SES"):
                written = self._ses.get_contact_list(ContactListName=self._list)
            if not any(t.get("TopicName") == topic for t in written.get("Topics") or []):
                raise ContactListBusy(f"topic {topic} was overwritten on {self._list}; will retry")
        logger.info("added topic %s to %s", topic, self._list, extra={"tenantId": tenant_id})
        return ContactListPlace(list=self._list, topic=topic)

    def release_for_tenant(self, tenant_id: str, place: ContactListPlace) -> bool:
        """Take the tenant's topic off the shared list, under the lock that adds
        topics; False when it was not there (any more)."""
        topic = place.topic or topic_name(tenant_id)
        with self._lock.held():
            current = self._existing_list()
            if current is None:
                return False
            topics = current.get("Topics") or []
            kept = [_writable(t) for t in topics if t.get("TopicName") != topic]
            if len(kept) == len(topics):
                logger.info("topic %s was already off %s", topic, self._list,
                            extra={"tenantId": tenant_id})
                return False
            self._write_topics(current, kept)
        logger.info("removed topic %s from %s", topic, self._list, extra={"tenantId": tenant_id})
        return True

    def _existing_list(self) -> "GetContactListResponseTypeDef | None":
        """The shared list as it is, or None when this stage has none (yet)."""
        try:
            with aws_call("SES"):
                return self._ses.get_contact_list(ContactListName=self._list)
        except Exception as error:
            if aws_error_code(error) != "NotFoundException":
                raise
        return None

    def _write_topics(self, current: "GetContactListResponseTypeDef",
                      topics: "list[TopicTypeDef]") -> None:
        """Write the list's whole topic array (UpdateContactList replaces it),
        keeping the description of ``current``, the list as read under the lock."""
        with aws_call("SES"):
            self._ses.update_contact_list(
                ContactListName=self._list, Topics=topics,
                **({"Description": current["Description"]} if current.get("Description") else {}),
            )

    def _current_list(self, tenant_id: str) -> "GetContactListResponseTypeDef":
        """The shared list as it is, made first if this stage has none yet."""
        current = self._existing_list()
        if current is not None:
            return current
        try:
            with aws_call("SES"):
                self._ses.create_contact_list(
                    ContactListName=self._list,
                    Description="Tenants of this stage: one topic per tenant",
                )
            logger.info("created the shared SES contact list %s", self._list,
                        extra={"tenantId": tenant_id})
        except Exception as error:
            code = aws_error_code(error)
            if code == "LimitExceededException":
                raise ContactListQuotaReached(
                    f"the SES contact-list quota is reached: {self._list} cannot be created "
                    "because this account and Region already hold a contact list"
                ) from None
            if code != "AlreadyExistsException":
                raise
        with aws_call("SES"):
            return self._ses.get_contact_list(ContactListName=self._list)


def _writable(topic: "TopicTypeDef") -> "TopicTypeDef":
    """What UpdateContactList takes of a topic GetContactList returned, and no more."""
    writable: TopicTypeDef = {
        "TopicName": topic["TopicName"],
        "DisplayName": topic["DisplayName"],
        "DefaultSubscriptionStatus": topic["DefaultSubscriptionStatus"],
    }
    if "Description" in topic:
        writable["Description"] = topic["Description"]
    return writable
