"""Errors of the webhooks API (docs/api.md#webhooks); codes listed in docs/api.md#errors."""

from __future__ import annotations

from app.errors import Conflict, NotFound


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class WebhookDisabled(Conflict):
    """A test ping asked of a disabled endpoint: nothing is sent to disabled endpoints."""

    code = "webhook_disabled"
