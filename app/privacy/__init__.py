"""Privacy: a visitor's data exported or erased on request, and the retention policy that purges
or anonymises old closed conversations (docs/api.md#privacy, docs/operations.md#retention)."""
