"""The staff web app and the REST API (aiohttp).

``ivr.web.app.create_web_app`` builds the application. This module holds what
its parts share: the typed key under which the app keeps the runtime, and the
slice of the ``ivr serve`` runtime (``ivr.app.Runtime``) the web app uses.
Naming only that slice keeps the web app testable without a FastAGI server or
a TTS pool, and keeps ``ivr.app.Runtime`` free to grow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from ivr.config import Settings
    from ivr.services import Services


class HealthReporter(Protocol):
    """The TTS engine as the health check sees it (``SpeechEngine.health``)."""

    def health(self) -> Mapping[str, Any]: ...


class ActiveCalls(Protocol):
    """The call handler as the web app sees it: the calls in progress, by uniqueid."""

    @property
    def active(self) -> Mapping[str, object]: ...


class MetricsExporter(Protocol):
    """The runtime's metrics as ``/metrics`` serves them (``ivr.metrics.Metrics``)."""

    def exposition(self) -> bytes: ...


class WebRuntime(Protocol):
    """What the web app needs from ``ivr.app.Runtime`` (which satisfies it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def speech(self) -> HealthReporter: ...

    @property
    def services(self) -> Services: ...

    @property
    def calls(self) -> ActiveCalls: ...

    @property
    def metrics(self) -> MetricsExporter: ...


RUNTIME: Final[web.AppKey[WebRuntime]] = web.AppKey("runtime")
