"""Webhooks: signed HTTP callbacks to other systems for conversation events (docs/api.md#webhooks).

Pure modules (no I/O, no clock, no randomness; checked by `lint-imports`): `events` (which stored
conversation events become which webhook, and their payloads), `signing` (the
`Warmline-Signature` header) and `schedule` (when a failed delivery is tried again).
`outbox.py` writes the deliveries in the transaction of the event (called by
`chat.log.append_event`, the one writer of events), from the per-process cache of subscriptions
in `subscriptions.py`; `dispatcher.py` sends them (the hub's `webhooks.deliver` loop);
`service.py` and `repository.py` serve the admin REST API.
"""
