"""Logging: every line of a call carries that call's Asterisk uniqueid."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

_uniqueid: contextvars.ContextVar[str] = contextvars.ContextVar("uniqueid", default="-")


@contextmanager
def call_context(uniqueid: str) -> Iterator[None]:
    token = _uniqueid.set(uniqueid or "-")
    try:
        yield
    finally:
        _uniqueid.reset(token)


class _UniqueidFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.uniqueid = _uniqueid.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "uniqueid": getattr(record, "uniqueid", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_UniqueidFilter())
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(uniqueid)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print query strings; keep it at warning.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
