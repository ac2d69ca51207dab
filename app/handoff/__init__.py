"""Handoff: warm and cold transfers, escalation to supervisors, and the context summary that
travels with a chat so the customer never repeats themselves (docs/handoff.md).

Pure modules (no I/O, no clock, no randomness; checked by `lint-imports` and
`tools/lint_cores.py`): `summary` (the builder and its types), `digest` (its 15-second text),
`facts` and `mentions` (what the customer gave), `statements` (problem sentences, agent
actions, open questions), `sentences`, `sentiment` and `repeats`. `summarizer` is the hook for
an external summarizer on top.
"""
