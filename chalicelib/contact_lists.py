"""The tenant's contact list: where its subscribers live, per the stage's mode.

Three modes, set per stage (CONTACT_LIST_MODE):
- ``subscriber-store`` (the default): the tenant's subscribers are items of
  the tenant in our own DynamoDB table (subscribers.py), and the tenant gets
  its own SES tenant (ses_tenants.py), SES's unit of per-tenant reputation and
  suppression. No SES list quota applies.
- ``list-per-tenant``: one SES contact list per tenant, as the seed describes. AWS
  allows only ONE contact list per account and Region, so in a real account
  this fails from the second tenant on (ContactListQuotaReached).
- ``topic-per-tenant``: one shared list per stage, made by the first
  onboarding that needs it (not by the stack: ``AWS::SES::ContactList`` owns
  its ``Topics``, so a stack update would drop every tenant's topic); each
  tenant gets a topic on it, at most 20 topics per list. UpdateContactList
  replaces the whole topic array, so the read-modify-write happens under a
  lease lock.

The record names the place a tenant was given and its mode (``listMode``), so
a stage that changes mode gives each tenant's place back as it was made
(``ContactListPlaces``).
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.errors import ContactListBusy, ContactListQuotaReached, aws_call, aws_error_code
from chalicelib.logs import get_logger
from chalicelib.settings import LIST_PER_TENANT, SUBSCRIBER_STORE, TOPIC_PER_TENANT

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sesv2.type_defs import GetContactListResponseTypeDef, TopicTypeDef

    from chalicelib.locks import LeaseLock
    from chalicelib.ses_tenants import SesTenants
    from chalicelib.subscribers import SubscriberStore

logger = get_logger(__name__)

MAX_TOPICS_PER_LIST = 20


def contact_list_name(tenant_id: str) -> str:
    """Deterministic, so a retried step finds the list it already made."""
    return f"tenant-{tenant_id}"


def topic_name(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


def subscriber_list_name(tenant_id: str) -> str:
    """The tenant's list in our own store (its subscriber items' partition)."""
    return f"subscribers-{tenant_id}"


@dataclass(frozen=True)
class ContactListPlace:
    list: str
    topic: str | None = None
    ses_tenant: str | None = None
    mode: str = LIST_PER_TENANT

    def to_dict(self) -> dict[str, str]:
        """As the record keeps it: list, listMode, and topic or sesTenant."""
        return {"list": self.list, "listMode": self.mode,
                **({"topic": self.topic} if self.topic else {}),
                **({"sesTenant": self.ses_tenant} if self.ses_tenant else {})}

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> "ContactListPlace | None":
        """The place a record names, or None when it holds none. Records from
        before ``listMode`` was kept are list-per-tenant, or topic-per-tenant
        when they name a topic."""
        if not record.get("list"):
            return None
        mode = record.get("listMode") or (TOPIC_PER_TENANT if record.get("topic") else LIST_PER_TENANT)
        return cls(list=record["list"], topic=record.get("topic"),
                   ses_tenant=record.get("sesTenant"), mode=mode)


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
                    "list per account and Region; use CONTACT_LIST_MODE=subscriber-store "
                    "(the default)"
                ) from None
            else:
                raise
        return ContactListPlace(list=name, mode=LIST_PER_TENANT)

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
                return ContactListPlace(list=self._list, topic=topic, mode=TOPIC_PER_TENANT)
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
        return ContactListPlace(list=self._list, topic=topic, mode=TOPIC_PER_TENANT)

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


class SubscriberStoreLists:
    """subscriber-store: the tenant's SES tenant, and its subscribers in our table."""

    def __init__(self, ses_tenants: "SesTenants", subscribers: "SubscriberStore") -> None:
        self._ses_tenants = ses_tenants
        self._subscribers = subscribers

    def ensure_for_tenant(self, tenant_id: str, tenant_name: str) -> ContactListPlace:
        """The SES tenant is made here; the subscriber list needs nothing made
        (its items appear as the tenant adds subscribers)."""
        ses_tenant = self._ses_tenants.ensure(tenant_id)
        return ContactListPlace(list=subscriber_list_name(tenant_id), ses_tenant=ses_tenant,
                                mode=SUBSCRIBER_STORE)

    def release_for_tenant(self, tenant_id: str, place: ContactListPlace) -> bool:
        """Every subscriber item (counted off), then the SES tenant; False when
        the SES tenant was already gone."""
        removed = self._subscribers.remove_all(tenant_id)
        if removed:
            logger.info("removed %d subscribers", removed, extra={"tenantId": tenant_id})
        if not place.ses_tenant:
            return removed > 0
        return self._ses_tenants.delete(place.ses_tenant, tenant_id)


class ContactListPlaces:
    """Gives a tenant's place back by the mode its record names, whatever the
    stage's mode is now (a stage may change mode with tenants in each)."""

    def __init__(self, providers: "dict[str, Any]") -> None:
        """``providers``: mode -> a function (place) -> ContactListProvider,
        called only for a mode a tenant's record names."""
        self._providers = providers

    def release_for_tenant(self, tenant_id: str, place: ContactListPlace) -> bool:
        provider = self._providers.get(place.mode)
        if provider is None:
            raise ValueError(f"no contact-list mode {place.mode!r}")
        released: bool = provider(place).release_for_tenant(tenant_id, place)
        return released


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
