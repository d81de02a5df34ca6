"""Context on every log line, whatever formatter prints it.

Modules log with ``extra={"tenantId": ...}`` (and executionArn, taskToken
already redacted). Lambda's default formatter prints only the message, so
this filter appends those fields to it: a line can always be traced to its
tenant in CloudWatch Logs Insights (``filter @message like "tenantId=..."``).
"""
import logging

CONTEXT_FIELDS = ("tenantId", "executionArn", "taskToken")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = [
            f"{field}={getattr(record, field)}"
            for field in CONTEXT_FIELDS
            if getattr(record, field, None)
        ]
        if context and not getattr(record, "_context_added", False):
            record.msg = f"{record.msg} [{' '.join(context)}]"
            record._context_added = True
        return True


_filter = ContextFilter()


def get_logger(name: str) -> logging.Logger:
    """A module's logger, with the context filter (filters are not inherited)."""
    logger = logging.getLogger(name)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger


def configure(level: str = "INFO") -> None:
    logging.getLogger("chalicelib").setLevel(level)
