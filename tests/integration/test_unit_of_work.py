"""The request's unit of work (`app.api.deps.unit`) tells a refused value from an outage
(docs/api.md#conventions: `422 invalid_data` and `503 unavailable`)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.api.deps import unit
from app.errors import InvalidData
from app.store.db import Database
from app.store.models import Skill
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


class TestUnit:
    async def test_a_number_the_driver_cannot_send_is_invalid_data(
        self, postgres_backend: Backend
    ) -> None:
        """A number past its column's type, which asyncpg refuses before sending it, is
        `InvalidData` (422), not `ServiceUnavailable` (503): asked again, it fails again.
        Found by tests/e2e/test_openapi_fuzz.py (`skill_id` of GET /conversations)."""
        db = Database(postgres_backend.database_url)
        try:
            with pytest.raises(InvalidData):
                async with unit(db, write=False) as session:
                    await session.execute(select(Skill).where(Skill.id == 2**40))
        finally:
            await db.dispose()
