"""Prometheus metrics of one ``ivr serve`` runtime (served at ``/metrics``).

Each runtime has its own ``CollectorRegistry``, never the library's global
one, so several runtimes can live in one process (the two-instance tests).

Two kinds of metrics:

* **observed** as things happen: calls ending, by outcome (the live event
  bus the call handler publishes on), the think time of every AGI step
  (``Session.on_think``: from Asterisk's last line to our next command, the
  time a caller waits on us) and the duration of every TTS synthesis
  (``SpeechEngine.on_synthesized``, cache misses only);
* **read at scrape time** from the counters and state the parts already keep
  (calls in progress, the spool, the TTS cache, the AMI link), so the call
  path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.eventbus import CallEnded, CallStarted, EventBus, LiveEvent

if TYPE_CHECKING:
    from ivr.agi.server import FastAGIServer
    from ivr.ami import AMIClient
    from ivr.callhandler import CallHandler
    from ivr.records import Spool
    from ivr.speech.tts import SpeechEngine

#: A step is a database read or a file check (milliseconds); seconds mean the
#: caller waited on synthesis or on a slow database.
THINK_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: A warm espeak-ng synthesis takes tens of milliseconds; a hang is cut at the TTS timeout.
SYNTHESIS_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Outcomes exported even before the first call ends, so rates start at zero.
COMMON_OUTCOMES: Final = ("completed", "abandoned", "failed")
#: The classic text format every Prometheus version reads (our names need none of 1.0.0's escaping).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class _RuntimeState(Collector):
    """Reads the runtime's own counters and state when Prometheus scrapes."""

    def __init__(
        self,
        calls: CallHandler,
        agi: FastAGIServer,
        spool: Spool,
        speech: SpeechEngine,
        ami: AMIClient | None,
    ) -> None:
        self.calls = calls
        self.agi = agi
        self.spool = spool
        self.speech = speech
        self.ami = ami

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("ivr_calls_active", "Calls in progress", value=len(self.calls.active))
        yield CounterMetricFamily(
            "ivr_agi_sessions_refused", "FastAGI sessions refused: too many calls at once", value=self.agi.rejected_busy
        )
        yield GaugeMetricFamily(
            "ivr_spool_backlog", "Call records waiting in the local spool for the database", value=self.spool.backlog()
        )
        yield CounterMetricFamily(
            "ivr_spool_replayed", "Spooled call records written to the database later", value=self.spool.replayed
        )
        tts = self.speech.health()
        yield CounterMetricFamily("ivr_tts_cache_hits", "Speech served from the TTS cache", value=tts["hits"])
        yield CounterMetricFamily("ivr_tts_cache_misses", "Speech that had to be synthesized", value=tts["misses"])
        yield CounterMetricFamily("ivr_tts_failures", "Syntheses that failed or timed out", value=tts["failures"])
        yield GaugeMetricFamily("ivr_tts_workers_alive", "TTS worker processes alive", value=tts["alive_workers"])
        ami = self.ami.health() if self.ami is not None else None
        yield GaugeMetricFamily(
            "ivr_ami_connected",
            "1 while logged in to the Asterisk Manager (0 when down or not configured)",
            value=1 if ami is not None and ami["state"] == "connected" else 0,
        )
        yield CounterMetricFamily(
            "ivr_ami_reconnects",
            "Connections to the Asterisk Manager lost and retried",
            value=ami["reconnects"] if ami else 0,
        )


class Metrics:
    """The registry of one runtime and the two histograms the parts feed."""

    def __init__(
        self,
        calls: CallHandler,
        agi: FastAGIServer,
        spool: Spool,
        speech: SpeechEngine,
        ami: AMIClient | None,
        events: EventBus,
    ) -> None:
        self.registry = CollectorRegistry()
        # The standard process_*, python_* and python_gc_* metrics.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.calls_ended = Counter("ivr_calls", "Calls finished, by outcome", ["outcome"], registry=self.registry)
        for outcome in COMMON_OUTCOMES:
            self.calls_ended.labels(outcome)
        self.agi_think = Histogram(
            "ivr_agi_step_think_seconds",
            "From Asterisk's reply to our next AGI command: how long a caller waits on the backend per step",
            buckets=THINK_BUCKETS,
            registry=self.registry,
        )
        self.tts_synthesis = Histogram(
            "ivr_tts_synthesis_seconds",
            "Duration of one TTS synthesis (cache misses only), queueing for a worker included",
            buckets=SYNTHESIS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RuntimeState(calls, agi, spool, speech, ami))
        speech.on_synthesized = self.tts_synthesis.observe
        events.listen(self._on_call_event)

    def _on_call_event(self, event: LiveEvent) -> None:
        if isinstance(event, CallStarted):
            event.call.session.on_think = self.agi_think.observe
        elif isinstance(event, CallEnded):
            self.calls_ended.labels(event.outcome).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of everything in the registry."""
        return generate_latest(self.registry)
