"""The process instruments and the cluster gauges' families, without a server: what each
committed event counts and what a scrape renders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from app.cli import _shared_metrics
from app.metrics import (
    MULTIPROC_ENV,
    ClusterCollector,
    ClusterFigures,
    Metrics,
    QueueFigures,
    exposition,
    prune_dead_workers,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: bytes) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def cluster_of(figures: ClusterFigures | None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ClusterCollector(lambda: figures))
    return registry


FIGURES = ClusterFigures(
    queues=[QueueFigures("", 0, 0.0), QueueFigures("billing", 3, 42.5)],
    conversations={"queued": 3, "assigned": 5, "offline": 1},
    agents={"online": 2, "away": 1, "offline": 4},
    read_seconds=0.003,
)


class TestEventCommitted:
    def test_each_kind_counts_where_documented(self) -> None:
        """Messages by sender, offers, transfers by kind and outcome, escalations by origin, and
        every event by kind."""
        metrics = Metrics()
        for kind, sender, body in [
            ("message", "visitor", {}),
            ("message", "visitor", {}),
            ("message", "agent", {}),
            ("conversation.offered", "system", {}),
            ("offer.declined", "agent", {}),
            ("offer.expired", "system", {}),
            ("transfer.requested", "agent", {"kind": "warm"}),
            ("transfer.requested", "system", {"kind": "escalation"}),
            ("transfer.accepted", "agent", {}),
            ("transfer.expired", "system", {}),
            ("conversation.escalated", "system", {"by": "rule"}),
            ("note", "agent", {}),
        ]:
            metrics.event_committed(kind, sender, body)
        samples = parse(exposition(metrics, cluster_of(None)))
        assert value(samples, "warmline_messages_total", sender="visitor") == 2
        assert value(samples, "warmline_messages_total", sender="agent") == 1
        assert value(samples, "warmline_messages_total", sender="system") == 0
        assert value(samples, "warmline_offers_made_total") == 1
        assert value(samples, "warmline_offers_declined_total") == 1
        assert value(samples, "warmline_offers_expired_total") == 1
        assert value(samples, "warmline_transfers_total", kind="warm") == 1
        assert value(samples, "warmline_transfers_total", kind="escalation") == 1
        assert value(samples, "warmline_transfers_total", kind="cold") == 0
        assert value(samples, "warmline_transfers_ended_total", outcome="accepted") == 1
        assert value(samples, "warmline_transfers_ended_total", outcome="expired") == 1
        assert value(samples, "warmline_escalations_total", by="rule") == 1
        assert value(samples, "warmline_escalations_total", by="agent") == 0
        assert value(samples, "warmline_conversation_events_total", kind="note") == 1
        assert value(samples, "warmline_conversation_events_total", kind="message") == 3

    def test_unknown_label_values_are_bounded(self) -> None:
        """A body value outside the known set counts as `other`, so a label never takes
        arbitrary values."""
        metrics = Metrics()
        metrics.event_committed("transfer.requested", "agent", {"kind": "x" * 50})
        metrics.event_committed("conversation.escalated", "agent", {"by": None})
        samples = parse(exposition(metrics, cluster_of(None)))
        assert value(samples, "warmline_transfers_total", kind="other") == 1
        assert value(samples, "warmline_escalations_total", by="other") == 1

    def test_two_apps_count_apart(self) -> None:
        """Each `Metrics` has its own registry: one app's messages are not another's."""
        one, two = Metrics(), Metrics()
        one.event_committed("message", "visitor", {})
        samples = parse(exposition(two, cluster_of(None)))
        assert value(samples, "warmline_messages_total", sender="visitor") == 0


class TestClusterCollector:
    def test_families_from_the_figures(self) -> None:
        """Queue depth and oldest wait per skill, open conversations by state, agents by status,
        and whether the read worked."""
        samples = parse(exposition(Metrics(), cluster_of(FIGURES)))
        assert value(samples, "warmline_cluster_figures_up") == 1
        assert value(samples, "warmline_cluster_figures_read_seconds") == 0.003
        assert value(samples, "warmline_queue_depth", skill="billing") == 3
        assert value(samples, "warmline_queue_depth", skill="") == 0
        assert value(samples, "warmline_queue_oldest_wait_seconds", skill="billing") == 42.5
        assert value(samples, "warmline_conversations_open", state="assigned") == 5
        assert value(samples, "warmline_agents", status="away") == 1

    def test_a_failed_read_says_so_and_nothing_else(self) -> None:
        """With the database down, `up` is 0 and no stale gauge is shown as current."""
        down = ClusterFigures(queues=(), conversations={}, agents={}, read_seconds=5.0, up=False)
        samples = parse(exposition(Metrics(), cluster_of(down)))
        assert value(samples, "warmline_cluster_figures_up") == 0
        assert not [key for key in samples if key[0] == "warmline_queue_depth"]

    def test_before_the_first_read_nothing_is_yielded(self) -> None:
        samples = parse(exposition(Metrics(), cluster_of(None)))
        assert ("warmline_cluster_figures_up", frozenset()) not in samples


class TestPruneDeadWorkers:
    def test_only_dead_workers_live_gauges_go(self, tmp_path: Path) -> None:
        """Files of a pid that no longer exists are removed; this process's and the counters of
        the dead one stay (what it counted did happen)."""
        dead = 2**22 + 12345  # above Linux's pid_max default
        (tmp_path / f"gauge_livesum_{dead}.db").write_bytes(b"")
        (tmp_path / f"counter_{dead}.db").write_bytes(b"")
        (tmp_path / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
        prune_dead_workers(str(tmp_path))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f"counter_{dead}.db", f"gauge_livesum_{os.getpid()}.db"]
        )


class TestSharedDirectory:
    """`serve`'s directory for the workers' figures (prometheus_client's multiprocess mode)."""

    def test_workers_get_a_fresh_directory_removed_at_exit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(MULTIPROC_ENV, raising=False)
        with _shared_metrics(2):
            path = Path(os.environ[MULTIPROC_ENV])
            assert path.is_dir()
            assert not list(path.iterdir())
        assert not path.exists()
        assert MULTIPROC_ENV not in os.environ  # nor its name, for what runs next

    def test_the_operators_directory_is_emptied_and_kept(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Figures of an earlier run would be added in: they go, with one worker too."""
        (tmp_path / "counter_12345.db").write_bytes(b"old")
        (tmp_path / "notes.txt").write_text("not ours")
        monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
        with _shared_metrics(1):
            assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
        assert tmp_path.is_dir()

    def test_one_worker_and_no_directory_is_plain_mode(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(MULTIPROC_ENV, raising=False)
        with _shared_metrics(1):
            assert MULTIPROC_ENV not in os.environ
