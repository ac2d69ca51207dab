"""Handoff: warm and cold transfers, escalation to supervisors, and the context summary that
travels with a chat so the customer never repeats themselves (docs/handoff.md).

Pure modules (no I/O, no clock, no randomness; checked by `lint-imports` and
`tools/lint_cores.py`): `summary` (the builder and its types), `digest` (its 15-second text),
`facts` and `mentions` (what the customer gave), `statements` (problem sentences, agent
actions, open questions), `sentences`, `sentiment` (the scorer interface and the built-in
lexicon scorer), `repeats` (the "repeated themselves" detector) and `rules` (when a chat
escalates on its own).

The rest works against the database. `service` is the facade the app calls; behind it, each
importing only those before it: `summaries` (the sentiment scorer in use, storing the context
summary, the repeat check, an external summarizer's prose), `transfers` (a transfer's target,
opening it and moving the chat), `escalation` (escalating, the rules' checks, a supervisor's
take), `requests` (an agent starts a warm or cold transfer) and `answers` (accept, decline,
cancel, expiry, internal notes). `repository` holds the supervisors' read-only queries (the
escalation list, the transfers report). `summarizer` is the hook for an external summarizer
(its interface, `load()` for WARMLINE_SUMMARIZER, `EXTRA_TIMEOUT` and `clip()`), called by the
realtime hub after each summary is stored.
"""
