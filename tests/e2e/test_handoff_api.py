"""What supervisors read about handoffs over REST (docs/api.md#escalations and
docs/api.md#transfer-report): the escalated list and the transfer report, from a real server.

Conversations, transfers and agents are written straight to the store, each test stating the
rows it reads; the flows that produce them (transfer, escalate, accept) have their own tests.
The escalation rules that run on the server's timer are switched off, so that no seeded chat
escalates by itself while a test reads the list.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.db import Database
from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    Role,
    RoutingSettings,
    Skill,
    Transfer,
    TransferKind,
    TransferState,
    Visitor,
)
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.integration.test_transfer_report import START as TRANSFER_DAY
from tests.integration.test_transfer_report import TransferDesk, simulate_transfers

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

# A fixed week for the report, far from "now", so the server's own timers never touch it.
T0 = datetime(2026, 6, 1, tzinfo=UTC)
WEEK = timedelta(days=7)


def z(value: datetime) -> str:
    """A query-string timestamp as a client writes it: ISO 8601 with `Z` (a `+` would need
    escaping)."""
    return value.isoformat().replace("+00:00", "Z")


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Seeder:
    """Rows written in one unit of work; ids are set before the commit."""

    session: AsyncSession
    skills: dict[str, int] = field(default_factory=dict)

    async def skill(self, slug: str) -> int:
        if slug not in self.skills:
            row = Skill(slug=slug, name=slug.title())
            self.session.add(row)
            await self.session.flush()
            self.skills[slug] = row.id
        return self.skills[slug]

    async def agent(self, name: str, role: Role = Role.AGENT) -> uuid.UUID:
        row = Agent(
            id=uuid.uuid4(),
            name=name,
            email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
            role=role,
            password_hash="not-a-login",  # never logs in: only named in the answers
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def conversation(
        self, visitor: str | None = "Ada", *, skill: str | None = None, **fields: Any
    ) -> uuid.UUID:
        seen = Visitor(id=uuid.uuid4(), token_hash=uuid.uuid4().hex, name=visitor)
        self.session.add(seen)
        await self.session.flush()
        row = Conversation(
            id=uuid.uuid4(),
            visitor_id=seen.id,
            skill_id=None if skill is None else await self.skill(skill),
            **fields,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def transfer(
        self,
        conversation_id: uuid.UUID,
        kind: TransferKind,
        state: TransferState = TransferState.ACCEPTED,
        *,
        decided_at: datetime | None = None,
        to_skill: str | None = None,
        skill: str | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        row = Transfer(
            id=uuid.uuid4(),
            conversation_id=conversation_id,
            kind=kind,
            state=state,
            to_skill_id=None if to_skill is None else await self.skill(to_skill),
            skill_id=None if skill is None else await self.skill(skill),
            created_at=(decided_at or T0) - timedelta(seconds=30),
            decided_at=decided_at,
            **fields,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id


@asynccontextmanager
async def seeding(backend: Backend) -> AsyncIterator[Seeder]:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            # Timer rules off: a seeded queued or held chat must not escalate by itself.
            await session.execute(
                update(RoutingSettings)
                .where(RoutingSettings.id == 1)
                .values(escalate_wait_seconds=None, escalate_handle_seconds=None)
            )
            yield Seeder(session)
    finally:
        await db.dispose()


async def agent_id_of(backend: Backend, email: str) -> uuid.UUID:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            found = await session.scalar(select(Agent.id).where(Agent.email == email))
    finally:
        await db.dispose()
    assert found is not None
    return found


@asynccontextmanager
async def api(server: Server, client: Client | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to /api/v1, as `client`'s agent (or anonymously)."""
    headers = {} if client is None else {"Authorization": f"Bearer {client.token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


async def login(server: Server, backend: Backend, name: str, role: Role) -> Client:
    return await Client.agent(server, await create_agent(backend, name=name, role=role))


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response's problem detail, after checking its status, code and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def invalid(response: httpx.Response) -> dict[str, str]:
    """A 422's field paths, with their problems."""
    return {e["field"]: e["problem"] for e in problem(response, 422, "invalid_request")["errors"]}


# --- GET /escalations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    """The escalated list's seeded chats, by what they show."""

    queued: uuid.UUID
    held: uuid.UUID
    offline: uuid.UUID
    closed: uuid.UUID
    calm: uuid.UUID
    dana: uuid.UUID
    sue: uuid.UUID
    pending: uuid.UUID
    billing: int


async def seed_desk(backend: Backend, now: datetime) -> Desk:
    """Three open escalated chats (queued, held, offline), escalated 30, 20 and 10 minutes ago;
    an older escalated chat that closed since; and a held chat nobody escalated."""
    async with seeding(backend) as seed:
        dana = await seed.agent("Dana")
        sue = await seed.agent("Sue", Role.SUPERVISOR)
        lee = await seed.agent("Lee", Role.SUPERVISOR)
        queued = await seed.conversation(
            "Ada",
            skill="billing",
            state=ConversationState.QUEUED,
            created_at=now - timedelta(minutes=45),
            queued_at=now - timedelta(minutes=40),
            escalated_at=now - timedelta(minutes=30),
            escalation_reason="The customer asked for 'your manager'.",
            transfer_count=1,
        )
        pending = await seed.transfer(
            queued,
            TransferKind.ESCALATION,
            TransferState.PENDING,
            to_supervisors=True,
            receivers=[str(sue), str(lee)],
            declined_by=[str(lee)],
            expires_at=now + timedelta(hours=1),
            reason="The customer asked for 'your manager'.",
        )
        # An older transfer of the same chat, long over: not the pending one.
        await seed.transfer(queued, TransferKind.WARM, decided_at=now - timedelta(minutes=42))
        held = await seed.conversation(
            "Bea",
            state=ConversationState.ASSIGNED,
            agent_id=dana,
            created_at=now - timedelta(minutes=50),
            queued_at=now - timedelta(minutes=50),
            assigned_at=now - timedelta(minutes=49),
            escalated_at=now - timedelta(minutes=20),
            escalation_reason="Escalated by Dana.",
            transfer_count=2,
        )
        offline = await seed.conversation(
            None,
            state=ConversationState.OFFLINE,
            created_at=now - timedelta(minutes=15),
            queued_at=now - timedelta(minutes=15),
            escalated_at=now - timedelta(minutes=10),
            escalation_reason="The customer asked for 'a supervisor'.",
            offline_reason="no_agents",
        )
        closed = await seed.conversation(
            "Cy",
            state=ConversationState.CLOSED,
            agent_id=dana,
            created_at=now - timedelta(hours=3),
            escalated_at=now - timedelta(hours=2),
            escalation_reason="Escalated by Dana.",
            closed_at=now - timedelta(hours=1),
        )
        calm = await seed.conversation(
            "Di",
            state=ConversationState.ASSIGNED,
            agent_id=dana,
            created_at=now - timedelta(minutes=5),
            assigned_at=now - timedelta(minutes=5),
        )
        billing = seed.skills["billing"]
    return Desk(queued, held, offline, closed, calm, dana, sue, pending, billing)


class TestEscalations:
    async def test_open_escalated_chats_oldest_escalation_first(self, backend: Backend) -> None:
        """A supervisor sees the open escalated chats, oldest escalation first, each with its
        reason, state, visitor, holder, skill, waiting time (queued only), transfer count and
        pending offer; a closed chat and a chat nobody escalated are not listed."""
        now = datetime.now(UTC)
        desk = await seed_desk(backend, now)
        server = await Server(backend).start()
        try:
            boss = await login(server, backend, "Boss", Role.SUPERVISOR)
            async with api(server, boss) as http:
                listed = ok(await http.get("/escalations"))
        finally:
            await server.stop()
        assert [row["conversation_id"] for row in listed] == [
            str(desk.queued),
            str(desk.held),
            str(desk.offline),
        ]
        queued, held, offline = listed
        waited = queued.pop("waiting_seconds")
        assert 40 * 60 <= waited < 40 * 60 + 120  # since queued_at, as the server reads its clock
        assert parsed(queued.pop("pending_transfer").pop("expires_at")) == now + timedelta(hours=1)
        assert parsed(queued.pop("escalated_at")) == now - timedelta(minutes=30)
        assert queued == {
            "conversation_id": str(desk.queued),
            "state": "queued",
            "reason": "The customer asked for 'your manager'.",
            "visitor": {"id": queued["visitor"]["id"], "name": "Ada"},
            "agent": None,
            "skill": {"id": desk.billing, "name": "Billing"},
            "transfer_count": 1,
        }
        assert held["state"] == "assigned"
        assert held["agent"] == {"id": str(desk.dana), "name": "Dana"}
        assert held["skill"] is None
        assert held["waiting_seconds"] is None
        assert held["transfer_count"] == 2
        assert held["pending_transfer"] is None
        assert held["visitor"]["name"] == "Bea"
        assert offline["state"] == "offline"
        assert offline["visitor"]["name"] is None
        assert (offline["agent"], offline["waiting_seconds"]) == (None, None)

    async def test_pending_offer_counts_receivers_still_able_to_accept(
        self, backend: Backend
    ) -> None:
        """The pending escalation offered to two supervisors, one of whom declined, shows one
        receiver, its kind and id; an admin reads the list too."""
        desk = await seed_desk(backend, datetime.now(UTC))
        server = await Server(backend).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            async with api(server, root) as http:
                first = ok(await http.get("/escalations", params={"limit": 1}))
        finally:
            await server.stop()
        pending = first[0]["pending_transfer"]
        assert (pending["id"], pending["kind"], pending["receivers"]) == (
            str(desk.pending),
            "escalation",
            1,
        )

    async def test_pages_continue_after_the_last_chat_seen(self, backend: Backend) -> None:
        """`limit` cuts the list and `after` (the last conversation_id seen) continues it; a chat
        that closed since still marks the place; an id that was never escalated is 422."""
        desk = await seed_desk(backend, datetime.now(UTC))
        server = await Server(backend).start()
        try:
            boss = await login(server, backend, "Boss", Role.SUPERVISOR)
            async with api(server, boss) as http:

                async def ids(**params: Any) -> list[str]:
                    rows = ok(await http.get("/escalations", params=params))
                    return [row["conversation_id"] for row in rows]

                assert await ids(limit=2) == [str(desk.queued), str(desk.held)]
                assert await ids(limit=2, after=str(desk.held)) == [str(desk.offline)]
                assert await ids(after=str(desk.offline)) == []
                assert await ids(after=str(desk.closed)) == [
                    str(desk.queued),
                    str(desk.held),
                    str(desk.offline),
                ]
                for never in (desk.calm, uuid.uuid4()):
                    refused = await http.get("/escalations", params={"after": str(never)})
                    assert invalid(refused) == {
                        "query.after": "no escalated conversation has this id"
                    }
                for limit in (0, 201):
                    refused = await http.get("/escalations", params={"limit": limit})
                    assert "query.limit" in invalid(refused)
        finally:
            await server.stop()

    async def test_only_supervisors_and_admins(self, backend: Backend) -> None:
        """A plain agent gets 403 naming the role needed; no token is 401 with
        `WWW-Authenticate: Bearer`."""
        server = await Server(backend).start()
        try:
            dana = await login(server, backend, "Dana", Role.AGENT)
            async with api(server, dana) as agent, api(server) as anonymous:
                refused = problem(await agent.get("/escalations"), 403, "forbidden")
                assert refused["required_role"] == "supervisor"
                response = await anonymous.get("/escalations")
                problem(response, 401, "invalid_token")
                assert response.headers["www-authenticate"] == "Bearer"
        finally:
            await server.stop()


# --- GET /reports/transfers --------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    bo: uuid.UUID
    cy: uuid.UUID
    al: uuid.UUID
    skills: dict[str, int]


async def seed_week(backend: Backend) -> Week:
    """Five transfers accepted in [T0, T0 + 7 d), two with a repeat, and others that must not
    count: accepted just outside the range, or not accepted at all."""
    async with seeding(backend) as seed:
        bo = await seed.agent("Bo")
        cy = await seed.agent("Cy")
        al = await seed.agent("Al", Role.SUPERVISOR)
        chat = await seed.conversation(
            state=ConversationState.CLOSED, created_at=T0 - timedelta(days=1)
        )
        day = timedelta(days=1)
        # Warm to the billing team from a chat that needed no skill: reported under billing.
        await seed.transfer(
            chat, TransferKind.WARM, decided_at=T0 + day, to_skill="billing", accepted_by=bo,
            repeat_seq=5,
        )  # fmt: skip
        # Exactly at `since`: included.
        await seed.transfer(
            chat, TransferKind.WARM, decided_at=T0, skill="billing", to_agent_id=cy, accepted_by=cy
        )
        await seed.transfer(
            chat, TransferKind.COLD, decided_at=T0 + 2 * day, to_skill="tech", skill="tech",
            accepted_by=bo,
        )  # fmt: skip
        await seed.transfer(
            chat, TransferKind.ESCALATION, decided_at=T0 + 3 * day, to_supervisors=True,
            accepted_by=al, repeat_seq=9,
        )  # fmt: skip
        await seed.transfer(
            chat, TransferKind.WARM, decided_at=T0 + 4 * day, to_skill="billing",
            skill="billing", accepted_by=bo,
        )  # fmt: skip
        # Not counted: at `until` (exclusive), a second before `since`, or not accepted.
        await seed.transfer(
            chat, TransferKind.WARM, decided_at=T0 + WEEK, skill="billing", accepted_by=cy,
            repeat_seq=3,
        )  # fmt: skip
        await seed.transfer(
            chat, TransferKind.WARM, decided_at=T0 - timedelta(seconds=1), accepted_by=cy
        )
        for state in (TransferState.DECLINED, TransferState.EXPIRED, TransferState.CANCELLED):
            await seed.transfer(
                chat, TransferKind.WARM, state, decided_at=T0 + day, to_agent_id=cy, repeat_seq=4
            )
        await seed.transfer(
            chat, TransferKind.WARM, TransferState.PENDING, to_agent_id=cy,
            receivers=[str(cy)], expires_at=datetime.now(UTC) + timedelta(hours=1),
        )  # fmt: skip
        skills = dict(seed.skills)
    return Week(bo, cy, al, skills)


def outcomes(**counts: int) -> dict[str, int]:
    return {"accepted": 0, "declined": 0, "expired": 0, "cancelled": 0, "pending": 0, **counts}


NO_CONVERSATIONS = {
    "total": {
        "handled": 0,
        "transferred": 0,
        "transfer_rate": None,
        "ping_pong": 0,
        "ping_pong_share": None,
    },
    "by_skill": [],
    "by_agent": [],
}


class TestTransferReport:
    async def test_counts_accepted_transfers_in_range_with_repeats(self, backend: Backend) -> None:
        """Over [since, until) the report counts the accepted transfers, those after which the
        customer repeated themselves and the share, per kind, per skill (the one transferred
        to, else the chat's) and per receiving agent, most transfers first, then by name."""
        week = await seed_week(backend)
        server = await Server(backend).start()
        try:
            boss = await login(server, backend, "Boss", Role.SUPERVISOR)
            async with api(server, boss) as http:
                report = ok(
                    await http.get(
                        "/reports/transfers", params={"since": z(T0), "until": z(T0 + WEEK)}
                    )
                )
        finally:
            await server.stop()
        billing, tech = week.skills["billing"], week.skills["tech"]
        assert parsed(report.pop("since")) == T0
        assert parsed(report.pop("until")) == T0 + WEEK
        no_time = {"accept_median_s": None, "accept_p90_s": None}
        assert report == {
            "total": 5,
            "with_repeat": 2,
            "repeat_share": 0.4,
            "by_kind": {"warm": 3, "cold": 1, "escalation": 1},
            # The declined, expired and cancelled ones end in the range too; the pending one was
            # requested 30 s before it. Seeded transfers carry no expiry: no time to accept.
            "outcomes": outcomes(accepted=5, declined=1, expired=1, cancelled=1),
            **no_time,
            "by_skill": [
                {
                    "skill": {"id": billing, "name": "Billing"},
                    "transfers": 3,
                    "with_repeat": 1,
                    "repeat_share": 0.3333,
                    "outcomes": outcomes(accepted=3),
                    **no_time,
                },
                {
                    "skill": {"id": tech, "name": "Tech"},
                    "transfers": 1,
                    "with_repeat": 0,
                    "repeat_share": 0.0,
                    "outcomes": outcomes(accepted=1),
                    **no_time,
                },
                {
                    "skill": None,
                    "transfers": 1,
                    "with_repeat": 1,
                    "repeat_share": 1.0,
                    # The chat needed no skill: the ones that did not move it stay under none.
                    "outcomes": outcomes(accepted=1, declined=1, expired=1, cancelled=1),
                    **no_time,
                },
            ],
            "by_agent": [
                {
                    "agent": {"id": str(week.bo), "name": "Bo"},
                    "transfers": 3,
                    "with_repeat": 1,
                    "repeat_share": 0.3333,
                    "declined": 0,
                    "expired": 0,
                    **no_time,
                },
                {
                    "agent": {"id": str(week.al), "name": "Al"},
                    "transfers": 1,
                    "with_repeat": 1,
                    "repeat_share": 1.0,
                    "declined": 0,
                    "expired": 0,
                    **no_time,
                },
                {
                    "agent": {"id": str(week.cy), "name": "Cy"},
                    "transfers": 1,
                    "with_repeat": 0,
                    "repeat_share": 0.0,
                    "declined": 0,
                    "expired": 0,
                    **no_time,
                },
            ],
            # The seeded chat was never measured (no conversation_metrics row): no figures.
            "conversations": NO_CONVERSATIONS,
        }

    async def test_a_range_without_transfers_has_no_share(self, backend: Backend) -> None:
        """A range with nothing accepted answers zeros and `repeat_share` null (not 0: no
        transfer is not a perfect score), its pending transfer under its outcome; an admin may
        read it."""
        await seed_week(backend)
        server = await Server(backend).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            async with api(server, root) as http:
                params = {"since": z(T0 - WEEK), "until": z(T0 - timedelta(seconds=1))}
                report = ok(await http.get("/reports/transfers", params=params))
        finally:
            await server.stop()
        assert {k: v for k, v in report.items() if k not in ("since", "until")} == {
            "total": 0,
            "with_repeat": 0,
            "repeat_share": None,
            "by_kind": {"warm": 0, "cold": 0, "escalation": 0},
            # Only the pending transfer, requested 30 s before T0: a share of nothing is null.
            "outcomes": outcomes(pending=1),
            "accept_median_s": None,
            "accept_p90_s": None,
            "by_skill": [
                {
                    "skill": None,
                    "transfers": 0,
                    "with_repeat": 0,
                    "repeat_share": None,
                    "outcomes": outcomes(pending=1),
                    "accept_median_s": None,
                    "accept_p90_s": None,
                }
            ],
            "by_agent": [],
            "conversations": NO_CONVERSATIONS,
        }

    async def test_default_range_is_the_last_seven_days(self, backend: Backend) -> None:
        """Without `since` and `until` the report covers the seven days up to now; with `until`
        alone, the seven days before it; with `since` alone, from it up to now."""
        now = datetime.now(UTC)
        async with seeding(backend) as seed:
            bo = await seed.agent("Bo")
            chat = await seed.conversation(state=ConversationState.CLOSED)
            for age in (timedelta(days=1), timedelta(days=6), timedelta(days=8)):
                await seed.transfer(chat, TransferKind.WARM, decided_at=now - age, accepted_by=bo)
        server = await Server(backend).start()
        try:
            boss = await login(server, backend, "Boss", Role.SUPERVISOR)
            async with api(server, boss) as http:
                default = ok(await http.get("/reports/transfers"))
                until = now - timedelta(days=2)
                before = ok(await http.get("/reports/transfers", params={"until": z(until)}))
                since = now - timedelta(days=10)
                after = ok(await http.get("/reports/transfers", params={"since": z(since)}))
        finally:
            await server.stop()
        assert default["total"] == 2
        assert parsed(default["until"]) - parsed(default["since"]) == WEEK
        assert now <= parsed(default["until"]) < now + timedelta(minutes=2)
        assert before["total"] == 2  # six and eight days ago
        assert (parsed(before["since"]), parsed(before["until"])) == (until - WEEK, until)
        assert after["total"] == 3
        assert parsed(after["since"]) == since

    async def test_bad_ranges_are_refused(self, backend: Backend) -> None:
        """`until` not after `since`, a range past 366 days, a timestamp without a time zone,
        one that is not a timestamp, and a format other than json or csv are 422 naming the
        parameter; 366 days exactly is fine."""
        server = await Server(backend).start()
        try:
            boss = await login(server, backend, "Boss", Role.SUPERVISOR)
            async with api(server, boss) as http:

                async def refused(**params: str) -> dict[str, str]:
                    return invalid(await http.get("/reports/transfers", params=params))

                assert await refused(since=z(T0), until=z(T0)) == {
                    "query.until": "must be after since"
                }
                assert await refused(since=z(T0), until=z(T0 - timedelta(hours=1))) == {
                    "query.until": "must be after since"
                }
                assert await refused(since=z(T0), until=z(T0 + timedelta(days=366, seconds=1))) == {
                    "query.since": "the range may span at most 366 days"
                }
                assert "query.since" in await refused(since="2026-06-01T00:00:00")
                assert "query.until" in await refused(until="last tuesday")
                assert "query.format" in await refused(format="xml")
                year = {"since": z(T0), "until": z(T0 + timedelta(days=366))}
                assert ok(await http.get("/reports/transfers", params=year))["total"] == 0
        finally:
            await server.stop()

    async def test_only_supervisors_and_admins(self, backend: Backend) -> None:
        """A plain agent gets 403; no token is 401."""
        server = await Server(backend).start()
        try:
            dana = await login(server, backend, "Dana", Role.AGENT)
            async with api(server, dana) as agent, api(server) as anonymous:
                refused = problem(await agent.get("/reports/transfers"), 403, "forbidden")
                assert refused["required_role"] == "supervisor"
                problem(await anonymous.get("/reports/transfers"), 401, "invalid_token")
        finally:
            await server.stop()


async def play_transfer_day(backend: Backend) -> dict[str, Any]:
    """The scripted day of tests/integration/test_transfer_report.py, days ago. Its transfer
    still pending (T10) is given a day more and the timer rules are off, so the server's
    timers leave it pending: neither its expiry nor the handle-time rule escalating the chat
    that still holds it (which would cancel it) runs while the report is read."""
    db = Database(backend.database_url, pool_size=5)
    try:
        ids = await simulate_transfers(TransferDesk(db, TRANSFER_DAY))
        async with db.write() as session:
            await session.execute(
                update(Transfer)
                .where(Transfer.state == TransferState.PENDING)
                .values(expires_at=datetime.now(UTC) + timedelta(days=1))
            )
            await session.execute(
                update(RoutingSettings)
                .where(RoutingSettings.id == 1)
                .values(escalate_wait_seconds=None, escalate_handle_seconds=None)
            )
    finally:
        await db.dispose()
    return ids


class TestTransferReportOfADay:
    async def test_every_figure_of_the_scripted_day(self, backend: Backend) -> None:
        """The day's transfers by outcome, time to accept, per skill and per agent (declines,
        expiries), and over its conversations the transfer rate and ping-pong, as JSON; the
        transfer rate per skill and agent is the conversation report's."""
        ids = await play_transfer_day(backend)
        server = await Server(backend).start()
        try:
            boss = await login(server, backend, "Boss", Role.SUPERVISOR)
            async with api(server, boss) as http:
                day = {
                    "since": z(TRANSFER_DAY - timedelta(hours=9)),
                    "until": z(TRANSFER_DAY + timedelta(hours=15)),
                }
                report = ok(await http.get("/reports/transfers", params=day))
                by_skill = ok(
                    await http.get("/reports/conversations", params={**day, "group_by": "skill"})
                )
                by_agent = ok(
                    await http.get("/reports/conversations", params={**day, "group_by": "agent"})
                )
                as_csv = await http.get("/reports/transfers", params={**day, "format": "csv"})
                by_accept = await http.get(
                    "/reports/transfers", params=day, headers={"Accept": "text/csv"}
                )
        finally:
            await server.stop()
        billing = {"id": ids["billing"], "name": "Billing"}
        tech = {"id": ids["tech"], "name": "Tech"}
        ann, bob = {"id": str(ids["ann"]), "name": "Ann"}, {"id": str(ids["bob"]), "name": "Bob"}
        cy, sue = {"id": str(ids["cy"]), "name": "Cy"}, {"id": str(ids["sue"]), "name": "Sue"}
        report.pop("since")
        report.pop("until")
        none = {"with_repeat": 0, "repeat_share": 0.0}
        assert report == {
            "total": 7,
            "with_repeat": 0,
            "repeat_share": 0.0,
            "by_kind": {"warm": 5, "cold": 1, "escalation": 1},
            "outcomes": outcomes(accepted=7, declined=1, expired=1, cancelled=1, pending=1),
            "accept_median_s": 35.0,
            "accept_p90_s": 75.0,
            "by_skill": [
                {
                    "skill": billing,
                    "transfers": 4,
                    **none,
                    "outcomes": outcomes(accepted=4, cancelled=1, pending=1),
                    "accept_median_s": 30.0,
                    "accept_p90_s": 54.0,
                },
                {
                    "skill": tech,
                    "transfers": 3,
                    **none,
                    "outcomes": outcomes(accepted=3, declined=1, expired=1),
                    "accept_median_s": 40.0,
                    "accept_p90_s": 80.0,
                },
            ],
            "by_agent": [
                {
                    "agent": ann,
                    "transfers": 3,
                    **none,
                    "declined": 0,
                    "expired": 1,
                    "accept_median_s": 35.0,
                    "accept_p90_s": 55.0,
                },
                {
                    "agent": bob,
                    "transfers": 2,
                    **none,
                    "declined": 0,
                    "expired": 0,
                    "accept_median_s": 25.0,
                    "accept_p90_s": 29.0,
                },
                {
                    "agent": cy,
                    "transfers": 1,
                    **none,
                    "declined": 1,
                    "expired": 0,
                    "accept_median_s": 90.0,
                    "accept_p90_s": 90.0,
                },
                {
                    "agent": sue,
                    "transfers": 1,
                    **none,
                    "declined": 0,
                    "expired": 0,
                    "accept_median_s": 40.0,
                    "accept_p90_s": 40.0,
                },
            ],
            # C1-C7 and C9 (C8 is open). Transferred: C1, C2, C3, C5, C7, C9. Ping-pong: C1, C5.
            "conversations": {
                "total": {
                    "handled": 8,
                    "transferred": 6,
                    "transfer_rate": 0.75,
                    "ping_pong": 2,
                    "ping_pong_share": 0.3333,
                },
                "by_skill": [
                    # C1, C4, C5, C6, C9; transferred C1, C5, C9.
                    {
                        "skill": billing,
                        "handled": 5,
                        "transferred": 3,
                        "transfer_rate": 0.6,
                        "ping_pong": 2,
                        "ping_pong_share": 0.6667,
                    },
                    {
                        "skill": tech,
                        "handled": 3,
                        "transferred": 3,
                        "transfer_rate": 1.0,
                        "ping_pong": 0,
                        "ping_pong_share": 0.0,
                    },
                ],
                "by_agent": [
                    # Last agent Ann: C1, C3, C4, C5, C6, C9; transferred C1, C3, C5, C9.
                    {
                        "agent": ann,
                        "handled": 6,
                        "transferred": 4,
                        "transfer_rate": 0.6667,
                        "ping_pong": 2,
                        "ping_pong_share": 0.5,
                    },
                    {
                        "agent": cy,
                        "handled": 1,
                        "transferred": 1,
                        "transfer_rate": 1.0,
                        "ping_pong": 0,
                        "ping_pong_share": 0.0,
                    },
                    {
                        "agent": sue,
                        "handled": 1,
                        "transferred": 1,
                        "transfer_rate": 1.0,
                        "ping_pong": 0,
                        "ping_pong_share": 0.0,
                    },
                ],
            },
        }
        conversations = report["conversations"]
        assert conversations["total"]["transfer_rate"] == by_skill["total"]["transfer_rate"]
        assert as_csv.status_code == 200, as_csv.text
        assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert by_accept.text == as_csv.text
        lines = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [(line["section"], line["group_by"], line["name"]) for line in lines] == [
            ("transfers", "total", ""),
            ("transfers", "skill", "Billing"),
            ("transfers", "skill", "Tech"),
            ("transfers", "agent", "Ann"),
            ("transfers", "agent", "Bob"),
            ("transfers", "agent", "Cy"),
            ("transfers", "agent", "Sue"),
            ("conversations", "total", ""),
            ("conversations", "skill", "Billing"),
            ("conversations", "skill", "Tech"),
            ("conversations", "agent", "Ann"),
            ("conversations", "agent", "Cy"),
            ("conversations", "agent", "Sue"),
        ]
        # Figures as in the JSON; what does not apply to a line is empty.
        assert lines[0]["transfers"] == "7"
        assert (lines[0]["pending"], lines[0]["accept_p90_s"], lines[0]["handled"]) == (
            "1",
            "75.0",
            "",
        )
        assert (lines[3]["group"], lines[3]["expired"], lines[3]["accepted"]) == (
            ann["id"],
            "1",
            "",
        )
        assert (lines[5]["declined"], lines[5]["accept_median_s"]) == ("1", "90.0")
        assert lines[8]["group"] == str(ids["billing"])
        assert (lines[8]["transfer_rate"], lines[8]["ping_pong_share"]) == ("0.6", "0.6667")
        assert lines[8]["transfers"] == ""
        rates = {row["group"]: row["transfer_rate"] for row in by_skill["rows"]}
        assert {
            str(r["skill"]["id"]): r["transfer_rate"] for r in conversations["by_skill"]
        } == rates
        rates = {row["group"]: row["transfer_rate"] for row in by_agent["rows"]}
        assert {r["agent"]["id"]: r["transfer_rate"] for r in conversations["by_agent"]} == rates
