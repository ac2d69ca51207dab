"""The `warmline` command: serve, migrate, create agents, load demo data.

Reads the same `WARMLINE_*` settings as the server. Reference: docs/operations.md#cli.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import importlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys as key_service
from app.auth.tokens import hash_password
from app.config import Settings
from app.logging import configure as configure_logging
from app.metrics import MULTIPROC_ENV
from app.store.db import Database, SchemaOutdated, alembic_config
from app.store.models import Agent, AgentSkill, ApiKey, CannedResponse, Role, Skill

DEMO_PASSWORD = "warmline-demo"  # noqa: S105 - printed to the operator; demo refuses production
DEMO_SKILLS = {
    "general": "General questions",
    "billing": "Billing",
    "technical": "Technical support",
}
DEMO_RULES: dict[str, tuple[list[str], list[str]]] = {  # slug: (keywords, page patterns)
    "billing": (
        ["invoice", "refund", "charged", "charge", "payment", "billing", "subscription",
         "credit card", "receipt"],
        ["/billing*", "/pricing*", "/account/invoices*"],
    ),
    "technical": (
        ["error", "bug", "crash", "login", "password", "install", "not working", "broken"],
        ["/docs/*", "/help/*"],
    ),
}  # fmt: skip
DEMO_AGENTS: tuple[tuple[str, str, Role, dict[str, int], int], ...] = (
    ("Dana Reyes", "dana@demo.warmline.dev", Role.AGENT, {"billing": 5, "general": 3}, 4),
    ("Sam Okafor", "sam@demo.warmline.dev", Role.AGENT, {"technical": 5, "general": 4}, 3),
    (
        "Lee Park",
        "lee@demo.warmline.dev",
        Role.SUPERVISOR,
        {"billing": 3, "technical": 3, "general": 5},
        2,
    ),
    ("Admin", "admin@demo.warmline.dev", Role.ADMIN, {}, 0),
)
# (shortcut, title, text, skill slug or None): replies agents insert by typing `/shortcut`.
DEMO_CANNED: tuple[tuple[str, str, str, str | None], ...] = (
    (
        "hello",
        "Greeting",
        "Hi {{visitor.first_name}}, I'm {{agent.first_name}}. How can I help you today?",
        None,
    ),
    (
        "refund",
        "Refund on its way",
        "Thanks {{visitor.first_name}}. I've issued the refund; it shows on your statement "
        "within 5 business days. We'll confirm at {{visitor.email}}.",
        "billing",
    ),
    (
        "reset",
        "Password reset",
        'You can reset your password from the login page ("Forgot password?"). The link we '
        "email is valid for an hour.",
        "technical",
    ),
    (
        "hold",
        "One moment",
        "Thanks for waiting, {{visitor.first_name}}. I'm checking this with our "
        "{{skill.name}} team and will be right back.",
        None,
    ),
    (
        "bye",
        "Goodbye",
        "Is there anything else I can help with? If not, have a great day! "
        "(Reference: {{conversation.id}})",
        None,
    ),
)
MIN_PASSWORD_LENGTH = 10
# The app factory uvicorn serves.
SERVER_APP = "app.main:create_app"


def _collect_again(*, load_server: bool, collect: bool) -> None:
    """Turn the collector back on (if it was on), after loading the server's modules when it
    will run."""
    if load_server:
        # What uvicorn loads from the string "app.main:create_app", loaded now, while the
        # collector is still off (by name, as uvicorn does: the CLI does not use it itself).
        importlib.import_module(SERVER_APP.partition(":")[0])

    if collect:
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    # Loading the server allocates hundreds of thousands of objects that live as long as the
    # process; the collector walking them over and over meanwhile costs a fifth of a start. It
    # is off until they are loaded, then they are frozen out of its view and collection goes on
    # as usual (`_collect_again`). Only here, not at import: importing this module (tests do)
    # changes nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(argv, collect=was_enabled)
    finally:
        if was_enabled:
            gc.enable()


def _main(argv: Sequence[str] | None, *, collect: bool) -> int:
    parser = argparse.ArgumentParser(prog="warmline", description="Warmline live-chat server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=os.environ.get("WARMLINE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("WARMLINE_PORT", "8000")))
    serve.add_argument(
        "--workers", type=int, default=1, help="processes on this host (needs Redis if > 1)"
    )
    serve.add_argument("--migrate", action="store_true", help="apply migrations before serving")

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--to", default="head", help="revision to upgrade to (default: head)")
    migrate.add_argument("--downgrade", metavar="REV", help="downgrade to REV instead (e.g. base)")

    agent = commands.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", required=True
    )
    create = agent.add_parser(
        "create", help="create an agent (password from WARMLINE_AGENT_PASSWORD or a prompt)"
    )
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
    create.add_argument(
        "--skill",
        action="append",
        default=[],
        metavar="SLUG[:LEVEL]",
        help="a skill with proficiency 1-5 (default 3); repeatable; unknown skills are created",
    )
    create.add_argument("--capacity", type=int, default=4, help="max concurrent chats (default 4)")

    commands.add_parser("demo", help="create demo skills and agents and print their logins")

    api_key = commands.add_parser("api-key", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = api_key.add_parser(
        "create", help="create an API key and print it (once) on standard output"
    )
    key_create.add_argument("--name", required=True, help="what the key is for")
    key_create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=sorted(key_service.SCOPES),
        help="a scope the key carries; repeatable",
    )
    api_key.add_parser("list", help="list API keys (never the keys themselves)")
    key_revoke = api_key.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("key_id", help="the key's id, as `list` shows it")

    args = parser.parse_args(argv)
    _collect_again(load_server=args.command == "serve", collect=collect)
    settings = Settings()
    try:
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            return _migrate(settings, args.to, args.downgrade)
        if args.command == "agent":
            return asyncio.run(_create_agent(settings, args))
        if args.command == "api-key":
            return asyncio.run(_api_key(settings, args))
        return asyncio.run(_demo(settings))
    except SchemaOutdated as exc:
        print(f"warmline: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - only the serve command needs it

    if args.workers > 1 and not settings.redis_url:
        print(
            "warmline: --workers > 1 needs WARMLINE_REDIS_URL: workers share events through Redis.",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and settings.is_sqlite:
        print(
            "warmline: --workers > 1 needs PostgreSQL (WARMLINE_DATABASE_URL=postgresql+asyncpg://…).",
            file=sys.stderr,
        )
        return 2
    if args.migrate:
        _migrate(settings, "head", None)
    else:
        db = Database(settings.database_url)
        try:
            asyncio.run(_check(db))
        except SchemaOutdated as exc:
            print(f"warmline: {exc}", file=sys.stderr)
            return 2
    # Under --workers this process only supervises; its own lines ("Uvicorn running on …",
    # workers started and restarted) are worth as much as the workers'.
    configure_logging(settings.log_level, json=settings.log_json)
    with _shared_metrics(args.workers):
        uvicorn.run(
            SERVER_APP,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # The app enforces the exact frame limit with a clear reason; this is the hard stop.
            ws_max_size=settings.max_frame_bytes * 4,
            ws_per_message_deflate=False,  # compression costs tens of KB per socket
            log_config=None,
            proxy_headers=True,
        )
    return 0


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several workers on one port, a scrape reaches any one of them: they keep their
    figures in files of one directory (prometheus_client's multiprocess mode), which each worker
    reads whole when scraped (docs/operations.md#metrics). The variable must be set before the
    workers start: prometheus_client picks its storage at import. The operator's own
    PROMETHEUS_MULTIPROC_DIR is used if set, emptied first (figures of an earlier run would
    otherwise be added in, with one worker too); else a temporary directory, removed at exit."""
    own = os.environ.get(MULTIPROC_ENV)
    if workers <= 1 and not own:
        yield
        return
    path = Path(own) if own else Path(tempfile.mkdtemp(prefix="warmline-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield
    finally:
        if not own:
            # Gone with its directory: a later app in this process (tests) must not write
            # its figures into files nobody reads, or look for a directory that is not there.
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


async def _check(db: Database) -> None:
    try:
        await db.check_schema()
    finally:
        await db.dispose()


def _migrate(settings: Settings, to: str, downgrade: str | None) -> int:
    cfg = alembic_config(settings.database_url)
    if downgrade:
        command.downgrade(cfg, downgrade)
        print(f"warmline: database downgraded to {downgrade}")
    else:
        command.upgrade(cfg, to)
        print(f"warmline: database migrated to {to}")
    return 0


async def _ensure_skill(session: AsyncSession, slug: str, name: str | None = None) -> Skill:
    skill = await session.scalar(select(Skill).where(Skill.slug == slug))
    if skill is None:
        skill = Skill(
            slug=slug, name=name or slug.replace("-", " ").title(), created_at=datetime.now(UTC)
        )
        session.add(skill)
        await session.flush()
    return skill


def _parse_skill(spec: str) -> tuple[str, int]:
    slug, _, level = spec.partition(":")
    proficiency = int(level) if level else 3
    if not slug or not 1 <= proficiency <= 5:  # noqa: PLR2004 - the proficiency scale
        msg = f"bad --skill {spec!r}: use SLUG or SLUG:LEVEL with LEVEL 1-5"
        raise SystemExit(msg)
    return slug, proficiency


async def _add_agent(
    session: AsyncSession,
    *,
    name: str,
    email: str,
    role: Role,
    skills: dict[str, int],
    capacity: int,
    password: str,
) -> Agent:
    agent = Agent(
        name=name,
        email=email.strip().lower(),
        role=role,
        password_hash=hash_password(password),
        capacity=capacity,
        created_at=datetime.now(UTC),
    )
    session.add(agent)
    await session.flush()
    for slug, level in skills.items():
        skill = await _ensure_skill(session, slug, DEMO_SKILLS.get(slug))
        session.add(AgentSkill(agent_id=agent.id, skill_id=skill.id, proficiency=level))
    await session.flush()
    return agent


async def _create_agent(settings: Settings, args: argparse.Namespace) -> int:
    skills = dict(_parse_skill(spec) for spec in args.skill)
    if not 0 <= args.capacity <= 100:  # noqa: PLR2004 - the capacity constraint of the schema
        print("warmline: --capacity must be between 0 and 100", file=sys.stderr)
        return 2
    password = os.environ.get("WARMLINE_AGENT_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            print(
                "warmline: set WARMLINE_AGENT_PASSWORD or run in a terminal to be prompted",
                file=sys.stderr,
            )
            return 2
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("warmline: the passwords differ", file=sys.stderr)
            return 2
    if len(password) < MIN_PASSWORD_LENGTH:
        print(
            f"warmline: the password needs at least {MIN_PASSWORD_LENGTH} characters",
            file=sys.stderr,
        )
        return 2
    db = Database(settings.database_url)
    try:
        await db.check_schema()
        async with db.write() as session:
            if await session.scalar(
                select(Agent.id).where(Agent.email == args.email.strip().lower())
            ):
                print(f"warmline: an agent with email {args.email} exists already", file=sys.stderr)
                return 1
            agent = await _add_agent(
                session,
                name=args.name,
                email=args.email,
                role=Role(args.role),
                skills=skills,
                capacity=args.capacity,
                password=password,
            )
        print(f"warmline: created {agent.role.value} {agent.name} <{agent.email}> id={agent.id}")
    finally:
        await db.dispose()
    return 0


async def _api_key(settings: Settings, args: argparse.Namespace) -> int:
    """`warmline api-key create|list|revoke`: what an admin does at /api/v1/api-keys, for
    provisioning without a login (docs/operations.md#cli)."""
    key_id: uuid.UUID | None = None
    if args.action == "revoke":
        try:
            key_id = uuid.UUID(args.key_id)
        except ValueError:
            print(f"warmline: {args.key_id!r} is not a key id (a UUID)", file=sys.stderr)
            return 2
    if args.action == "create" and not args.name.strip():
        print("warmline: --name must not be empty", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    try:
        await db.check_schema()
        async with db.write() as session:
            now = datetime.now(UTC)
            if args.action == "create":
                issued = await key_service.create_api_key(
                    session,
                    name=args.name.strip()[:128],
                    scopes=sorted(set(args.scope)),
                    created_by=None,
                    now=now,
                )
                print(
                    f"warmline: created API key {issued.row.name!r} id={issued.row.id} "
                    f"scopes={','.join(issued.row.scopes)}; it is shown only now",
                    file=sys.stderr,
                )
                print(issued.key)
                return 0
            if args.action == "list":
                rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))
                for row in rows:
                    state = (
                        f"revoked {row.revoked_at:%Y-%m-%dT%H:%MZ}" if row.revoked_at else "active"
                    )
                    used = f"{row.last_used_at:%Y-%m-%dT%H:%MZ}" if row.last_used_at else "never"
                    print(
                        f"{row.id}  {row.prefix}…  {state}  last used {used}  "
                        f"{','.join(row.scopes)}  {row.name}"
                    )
                return 0
            revoked = await session.get(ApiKey, key_id)
            if revoked is None:
                print(f"warmline: no API key has the id {key_id}", file=sys.stderr)
                return 1
            if revoked.revoked_at is None:
                revoked.revoked_at = now
            print(
                f"warmline: revoked API key {revoked.name!r} ({revoked.prefix}…)", file=sys.stderr
            )
            return 0
    finally:
        await db.dispose()


async def _demo_canned(session: AsyncSession) -> None:
    """The demo canned responses not there yet (an admin may have changed the others)."""
    taken = set(await session.scalars(select(CannedResponse.shortcut)))
    now = datetime.now(UTC)
    for shortcut, title, text, slug in DEMO_CANNED:
        if shortcut in taken:
            continue
        skill = None if slug is None else await _ensure_skill(session, slug, DEMO_SKILLS.get(slug))
        session.add(
            CannedResponse(
                shortcut=shortcut,
                title=title,
                text=text,
                skill_id=None if skill is None else skill.id,
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()


async def _demo(settings: Settings) -> int:
    if settings.env == "production":
        print("warmline: refusing to load demo data with WARMLINE_ENV=production", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    try:
        await db.check_schema()
        async with db.write() as session:
            for slug, name in DEMO_SKILLS.items():
                skill = await _ensure_skill(session, slug, name)
                keywords, patterns = DEMO_RULES.get(slug, ([], []))
                skill.keywords, skill.page_patterns = keywords, patterns
            for name, email, role, skills, capacity in DEMO_AGENTS:
                if await session.scalar(select(Agent.id).where(Agent.email == email)) is None:
                    await _add_agent(
                        session,
                        name=name,
                        email=email,
                        role=role,
                        skills=skills,
                        capacity=capacity,
                        password=DEMO_PASSWORD,
                    )
            await _demo_canned(session)
    finally:
        await db.dispose()
    host = os.environ.get("WARMLINE_HOST", "127.0.0.1")
    port = os.environ.get("WARMLINE_PORT", "8000")
    base = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"  # noqa: S104
    lines = [
        "Warmline demo data is ready.",
        "",
        f"  API docs:      {base}/docs",
        f"  Health:        {base}/readyz",
        f"  Visitor WS:    {base.replace('http', 'ws')}/ws/v1/visitor",
        f"  Agent WS:      {base.replace('http', 'ws')}/ws/v1/agent",
        "",
        f"  Logins (password for all: {DEMO_PASSWORD}):",
    ]
    lines += [f"    {role.value:<10} {name:<11} {email}" for name, email, role, _, _ in DEMO_AGENTS]
    lines += ["", "  Canned responses: " + " ".join(f"/{c[0]}" for c in DEMO_CANNED)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
