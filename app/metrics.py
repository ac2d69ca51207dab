"""Prometheus metrics: the process's instruments, the cluster-wide gauges' shape, the exposition.

Owns every metric name Warmline exposes at `GET /metrics`; each is defined precisely in
docs/metrics.md#prometheus-metrics. Two kinds:

- **Process figures** (`Metrics`): counters, histograms and the connections gauge, kept in this
  process and incremented where things happen: by the store when a unit of work commits
  (`store.db.after_commit()`; a rolled-back transaction counts nothing), by the bus, by the
  realtime sockets. Summed across nodes.
- **Cluster figures** (`ClusterFigures`, `ClusterCollector`): queue depth, oldest wait, agents by
  status, read from the database at scrape time (`routing.gauges`), so every node reports the
  same values. Aggregate them with `max`, never `sum`.

Each app builds its own `Metrics` with its own registry (never prometheus_client's global one), so
several apps in one process (tests) count apart. Under `warmline serve --workers N`, `cli` sets
`PROMETHEUS_MULTIPROC_DIR` before the workers start: the instruments then live in files shared by
the workers and any worker's scrape reads them all (`exposition()`).

Sits at the bottom of the layers with `config` and `logging`: it imports nothing of Warmline, so
the store and the bus may use it. Increments are a dict lookup and a float add; nothing here
does I/O except `prune_dead_workers()`, which lists a directory at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from typing_extensions import override

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# Waits are human-scale: a good desk answers within seconds, a bad hour within minutes. Buckets
# up to 30 minutes keep a backlog visible instead of piling it into +Inf.
WAIT_BUCKETS: Final = (0.1, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800)
# Database statements and bus hops: sub-millisecond on a healthy local network, seconds when
# something is wrong (a lock wait, a saturated pool, a slow Redis).
IO_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

# HTTP requests: most answer in milliseconds; an export or a report over a long range takes
# seconds, and a request stuck behind a saturated pool shows up in the upper buckets.
HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Methods outside this set are counted as "other": a client cannot invent label values.
HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route label of a request that matched no route (a 404, a probe for /wp-login.php): one
# value, so that scanners cannot create a time series per path they try.
UNMATCHED_ROUTE: Final = "unmatched"

# Event kinds counted by name (docs/protocol.md#events); kept as strings because this module may
# not import `chat`. A kind missing here still counts in warmline_conversation_events_total.
_MESSAGE = "message"
_OFFERED = "conversation.offered"
_OFFER_DECLINED = "offer.declined"
_OFFER_EXPIRED = "offer.expired"
_TRANSFER_REQUESTED = "transfer.requested"
_TRANSFER_ENDS: Final = {
    "transfer.accepted": "accepted",
    "transfer.declined": "declined",
    "transfer.expired": "expired",
    "transfer.cancelled": "cancelled",
}
_ESCALATED = "conversation.escalated"
_SLA_BREACHED = "sla.breached"
_TRANSFER_KINDS: Final = frozenset({"warm", "cold", "escalation"})
_ESCALATED_BY: Final = frozenset({"agent", "rule", "visitor"})
_SENDERS: Final = frozenset({"visitor", "agent", "system"})


class Metrics:
    """One process's instruments, in a registry of their own.

    Args:
        registry: where to register them; a new one when omitted.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        if not multiprocess_dir():
            # CPU, memory and file descriptors of this process. Left out under --workers: a
            # scrape would describe only the worker that answered it.
            ProcessCollector(registry=r)
        self.connections = Gauge(
            "warmline_connections",
            "WebSocket connections past their hello, on this node, by role.",
            ["role"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.events = Counter(
            "warmline_conversation_events",
            "Conversation events committed by this node, by kind.",
            ["kind"],
            registry=r,
        )
        self.messages = Counter(
            "warmline_messages",
            "Chat messages committed by this node, by sender type.",
            ["sender"],
            registry=r,
        )
        self.offers_made = Counter(
            "warmline_offers_made", "Offers of a queued chat made to an agent.", registry=r
        )
        self.offers_declined = Counter(
            "warmline_offers_declined", "Offers an agent declined.", registry=r
        )
        self.offers_expired = Counter(
            "warmline_offers_expired", "Offers that expired unanswered.", registry=r
        )
        self.transfers = Counter(
            "warmline_transfers",
            "Transfers requested, by kind (warm, cold, escalation).",
            ["kind"],
            registry=r,
        )
        self.transfer_ends = Counter(
            "warmline_transfers_ended",
            "Pending transfers that ended, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.escalations = Counter(
            "warmline_escalations",
            "Chats escalated to the supervisors, by who escalated them.",
            ["by"],
            registry=r,
        )
        self.sla_breaches = Counter(
            "warmline_sla_breaches",
            "Conversations whose first agent reply missed the target of the skill they arrived"
            " needing, recorded live (docs/metrics.md#sla-breaches), by skill slug ('' for the"
            " chats that need no skill).",
            ["skill"],
            registry=r,
        )
        self.assignment_latency = Histogram(
            "warmline_assignment_latency_seconds",
            "From a chat entering the queue to each routing decision that offers or assigns it.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "warmline_queue_wait_seconds",
            "From a chat entering the queue to an agent holding it.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.webhook_attempts = Counter(
            "warmline_webhook_attempts",
            "Webhook delivery attempts recorded, by outcome (delivered, retrying, failed).",
            ["outcome"],
            registry=r,
        )
        self.db_transaction = Histogram(
            "warmline_db_transaction_seconds",
            "Units of work, from their start to their commit or rollback, by mode.",
            ["mode"],
            buckets=IO_BUCKETS,
            registry=r,
        )
        self.db_statement = Histogram(
            "warmline_db_statement_seconds",
            "Database statements, from sending to the result.",
            buckets=IO_BUCKETS,
            registry=r,
        )
        self.bus_publish = Histogram(
            "warmline_bus_publish_seconds",
            "Bus publishes, from the call to the broker's answer.",
            buckets=IO_BUCKETS,
            registry=r,
        )
        self.bus_publish_failures = Counter(
            "warmline_bus_publish_failures", "Bus publishes that failed.", registry=r
        )
        self.bus_delivery = Histogram(
            "warmline_bus_delivery_seconds",
            "Bus notices, from their publish on any node to their receipt on this one.",
            buckets=IO_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "warmline_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "warmline_http_request_duration_seconds",
            "HTTP requests, from their arrival to the end of the response body, by method and"
            " route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        for role in ("visitor", "agent"):
            self.connections.labels(role)  # present at 0 from the start
        for outcome in ("delivered", "retrying", "failed"):
            self.webhook_attempts.labels(outcome)
        self._messages_by_sender = {sender: self.messages.labels(sender) for sender in _SENDERS}
        for kind in _TRANSFER_KINDS:
            self.transfers.labels(kind)
        for outcome in _TRANSFER_ENDS.values():
            self.transfer_ends.labels(outcome)
        for by in _ESCALATED_BY:
            self.escalations.labels(by)
        for mode in ("read", "write"):
            self.db_transaction.labels(mode)
        self._events_by_kind: dict[str, Counter] = {}

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request (`route`: the matched template, or UNMATCHED_ROUTE)."""
        method = method if method in HTTP_METHODS else "other"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def event_committed(self, kind: str, sender: str, body: Mapping[str, Any]) -> None:
        """Count one conversation event whose transaction has committed."""
        # `labels()` takes a lock and builds a key each time: the children are kept by kind.
        child = self._events_by_kind.get(kind)
        if child is None:
            child = self._events_by_kind[kind] = self.events.labels(kind)
        child.inc()
        if kind == _MESSAGE:
            self._messages_by_sender.get(sender, self._messages_by_sender["system"]).inc()
        elif kind == _OFFERED:
            self.offers_made.inc()
        elif kind == _OFFER_DECLINED:
            self.offers_declined.inc()
        elif kind == _OFFER_EXPIRED:
            self.offers_expired.inc()
        elif kind == _TRANSFER_REQUESTED:
            transfer = body.get("kind")
            self.transfers.labels(transfer if transfer in _TRANSFER_KINDS else "other").inc()
        elif kind in _TRANSFER_ENDS:
            self.transfer_ends.labels(_TRANSFER_ENDS[kind]).inc()
        elif kind == _ESCALATED:
            by = body.get("by")
            self.escalations.labels(by if by in _ESCALATED_BY else "other").inc()
        elif kind == _SLA_BREACHED:
            # Skills are an administrator's short list of slugs: a bounded label.
            skill = body.get("skill")
            slug = skill.get("slug") if isinstance(skill, Mapping) else None
            self.sla_breaches.labels(slug if isinstance(slug, str) else "").inc()


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One skill's queue (skill `""`: chats that need no particular skill)."""

    skill: str
    depth: int
    oldest_wait_seconds: float


@dataclass(frozen=True, slots=True)
class ClusterFigures:
    """What the database says now, the same on every node."""

    queues: Sequence[QueueFigures]
    conversations: Mapping[str, int]  # open conversations by state: queued, assigned, offline
    agents: Mapping[str, int]  # active agents by status: online, away, offline
    read_seconds: float  # how long the reads took
    up: bool = True  # False: the database did not answer; the other fields are empty


class ClusterCollector(Collector):
    """Yields the cluster-wide gauges from the latest figures `source` returns (read by the
    `/metrics` handler just before rendering, so `collect()` itself does no I/O)."""

    def __init__(self, source: Callable[[], ClusterFigures | None]) -> None:
        self._source = source

    @override
    def collect(self) -> Iterable[Metric]:
        figures = self._source()
        if figures is None:
            return
        yield from _cluster_families(figures)


def _cluster_families(figures: ClusterFigures) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "warmline_cluster_figures_up",
        "1 if the cluster-wide gauges could be read from the database for this scrape, else 0.",
        value=1 if figures.up else 0,
    )
    yield up
    took = GaugeMetricFamily(
        "warmline_cluster_figures_read_seconds",
        "How long reading the cluster-wide gauges from the database took.",
        value=figures.read_seconds,
    )
    yield took
    if not figures.up:
        return
    depth = GaugeMetricFamily(
        "warmline_queue_depth", "Chats waiting in the queue, by required skill.", labels=["skill"]
    )
    oldest = GaugeMetricFamily(
        "warmline_queue_oldest_wait_seconds",
        "How long the longest-waiting queued chat has waited, by required skill (0: none).",
        labels=["skill"],
    )
    for queue in figures.queues:
        depth.add_metric([queue.skill], queue.depth)
        oldest.add_metric([queue.skill], queue.oldest_wait_seconds)
    yield depth
    yield oldest
    conversations = GaugeMetricFamily(
        "warmline_conversations_open",
        "Conversations not closed, by state (queued, assigned, offline).",
        labels=["state"],
    )
    for state, count in sorted(figures.conversations.items()):
        conversations.add_metric([state], count)
    yield conversations
    agents = GaugeMetricFamily(
        "warmline_agents", "Active agents by status (online, away, offline).", labels=["status"]
    )
    for status, count in sorted(figures.agents.items()):
        agents.add_metric([status], count)
    yield agents


def multiprocess_dir() -> str | None:
    """The directory shared by `--workers` processes, when this process is one of them."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(metrics: Metrics, cluster: CollectorRegistry) -> bytes:
    """The text exposition of a scrape: this process's figures (all workers' under
    `--workers`) followed by the cluster-wide gauges."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(metrics.registry) + generate_latest(cluster)
    prune_dead_workers(path)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call] # unannotated upstream
    return generate_latest(merged) + generate_latest(cluster)


def prune_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that died without a clean shutdown (SIGKILL, a crash),
    so `warmline_connections` stops counting their sockets. Their counters stay: what they
    counted did happen. All workers share one host, so a pid that no longer exists is dead."""
    pids: set[int] = set()
    for entry in Path(path).glob("gauge_live*_*.db"):
        tail = entry.stem.rsplit("_", 1)[-1]
        if tail.isdigit():
            pids.add(int(tail))
    for pid in pids:
        if not _alive(pid):
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call] # unannotated upstream


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def worker_exited() -> None:
    """Called by a worker as it shuts down: its live gauges leave the shared figures."""
    path = multiprocess_dir()
    if path is not None:
        mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call] # unannotated upstream
