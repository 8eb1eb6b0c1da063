"""Configuration: defaults in code, an optional TOML file, then ``IVR_*`` variables.

Validated once at start-up into a frozen object. Secrets are ``SecretStr`` so
they print as ``**********``; live clients are built from this, never stored in it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class WeeklyHours(BaseModel):
    """Office hours for one weekday, in the configured zone."""

    model_config = ConfigDict(frozen=True)
    opens: time
    closes: time

    @model_validator(mode="after")
    def _ordered(self) -> WeeklyHours:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens")
        return self


def _default_week() -> dict[str, WeeklyHours]:
    # Working hours of Central Java regency offices (five-day week).
    weekday = WeeklyHours(opens=time(7, 30), closes=time(16, 0))
    return {
        "mon": weekday,
        "tue": weekday,
        "wed": weekday,
        "thu": weekday,
        "fri": WeeklyHours(opens=time(7, 30), closes=time(11, 30)),
    }


WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by ``IVR_CONFIG_FILE`` (TOML, flat keys without prefix)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("IVR_CONFIG_FILE")
        if not path:
            return {}
        with open(path, "rb") as handle:
            return tomllib.load(handle)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IVR_", frozen=True, extra="forbid")

    data_dir: Path = Path("data")
    database_url: str = ""
    #: ``ivr serve`` applies the migrations before it starts (concurrent
    #: starts on PostgreSQL take turns); false where a deploy step runs
    #: ``ivr db upgrade`` and instances must never change the schema.
    migrate_on_start: bool = True
    recordings_dir: Path = Path("recordings")
    #: Where Asterisk finds ``recordings_dir`` (same host: the same path; a shared
    #: volume in docker: its mount point inside the Asterisk container).
    asterisk_recordings_dir: Path | None = None

    agi_host: str = "127.0.0.1"
    agi_port: int = Field(4573, ge=0, le=65535)
    agi_max_sessions: int = Field(2000, ge=1)
    agi_header_timeout: float = Field(5.0, gt=0)
    agi_allowed_hosts: tuple[str, ...] = ()
    #: Ceiling for one call, whatever it does (an emergency bridge may last long).
    call_max_seconds: float = Field(4 * 3600, gt=0)
    shutdown_grace_seconds: float = Field(30.0, ge=0)

    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)

    # Staff sign-in (ivr/web/sessions.py). A session ends after ``session_idle_minutes``
    # without a request or ``session_max_hours`` after sign-in, whichever comes first.
    session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    session_max_hours: int = Field(12, ge=1, le=24 * 30)
    #: Mark the cookie Secure even when the request arrives over plain HTTP: set it
    #: behind a proxy that terminates TLS (requests over HTTPS always get Secure).
    session_cookie_secure: bool = False
    #: Failed sign-ins within ``login_window_minutes`` that lock a username (known or
    #: not) for ``login_lockout_minutes``; the per-address limit is higher because one
    #: office's staff may share an address.
    login_max_failures: int = Field(5, ge=1, le=100)
    login_max_failures_per_address: int = Field(20, ge=1, le=1000)
    login_window_minutes: int = Field(15, ge=1, le=24 * 60)
    login_lockout_minutes: int = Field(15, ge=1, le=24 * 60)
    #: Reverse proxies (addresses or networks) whose ``X-Forwarded-For`` names the
    #: client; without it every request behind a proxy would share one address
    #: and one login throttle.
    http_trusted_proxies: tuple[str, ...] = ()

    timezone: str = "Asia/Jakarta"
    language: str = "id"
    office_hours: dict[str, WeeklyHours] = Field(default_factory=_default_week)
    menus_file: Path | None = None

    #: Synthesized audio cache; must lie under ``recordings_dir`` so Asterisk can play it.
    tts_cache_dir: Path | None = None
    tts_voice: str = "id"
    tts_rate: int = Field(150, ge=80, le=450)
    tts_volume: float = Field(1.0, gt=0, le=1.0)
    tts_workers: int = Field(1, ge=1, le=8)
    tts_timeout: float = Field(5.0, gt=0)
    #: How long a caller may wait for an uncached read-back before the apology.
    tts_call_wait: float = Field(2.0, gt=0)

    operator_dial: tuple[str, ...] = ("Local/100@operator",)
    operator_ring_seconds: int = Field(25, ge=5, le=120)

    #: Urgent alerts (a sudden schedule change): the protocol desk is called over
    #: AMI at ``alert_dial`` (one Originate channel; a Local channel reaches a
    #: group); when it answers, Asterisk runs ``alert_context``, extension = the
    #: alert's id, whose dialplan starts the ``alert`` flow.
    alert_dial: str = "Local/100@operator"
    alert_context: str = "callcenter-alert"
    alert_ring_seconds: int = Field(30, ge=5, le=120)
    #: After no answer, busy, or an answer without the acknowledging 1.
    alert_retry_seconds: float = Field(120.0, ge=1)
    #: While AMI is down the alert waits; it is tried again this often.
    alert_poll_seconds: float = Field(5.0, gt=0)
    #: How long an answered call may take to acknowledge before the desk is called again.
    alert_ack_seconds: float = Field(180.0, ge=10)
    alert_max_attempts: int = Field(10, ge=1, le=100)

    ami_host: str = ""
    ami_port: int = Field(5038, ge=1, le=65535)
    ami_username: str = ""
    ami_secret: SecretStr = SecretStr("")

    # Emergency routing (PRODUCT.md section 3; ivr/emergency/).
    #: Ring time of an escalation level that does not give its own.
    emergency_ring_seconds: int = Field(20, ge=5, le=120)
    #: How often the chain is tried while the caller waits, unless the shift says.
    emergency_rounds: int = Field(2, ge=1, le=10)
    #: How long a duty officer has to press 1 (accept) or 2 (decline) once the
    #: screening prompt has played; no key moves on to the next officer.
    emergency_screen_seconds: float = Field(8.0, ge=2, le=30)
    #: Rung all at once when no shift covers now and the roster has no fallback
    #: chain of its own (flagged on the ticket). The protocol desk by default.
    emergency_fallback_dial: tuple[str, ...] = ("Local/100@operator",)
    #: Unanswered emergencies: the duty officers are called back over AMI, level
    #: by level, until one presses 1 or ``emergency_callback_rounds`` passes over
    #: the chain are done. The first callback waits ``..._delay_seconds`` after
    #: the caller's message; each next level ``..._interval_seconds`` after the last.
    emergency_callback_delay_seconds: float = Field(0.0, ge=0, le=3600)
    emergency_callback_interval_seconds: float = Field(180.0, gt=0, le=3600)
    emergency_callback_rounds: int = Field(3, ge=1, le=20)
    emergency_callback_ring_seconds: int = Field(30, ge=1, le=120)
    #: Dialplan context an answered callback runs (it starts the ``ack`` flow).
    emergency_callback_context: str = "callcenter-callback"
    #: What the officer's phone shows for a callback (AMI ``CallerID:``); empty: Asterisk's default.
    emergency_callback_caller_id: str = '"Call Center Protokol" <1500>'
    #: An answered callback whose ``ack`` flow never reports back counts as not
    #: acknowledged after this long, and the next one is placed.
    emergency_ack_timeout_seconds: float = Field(300.0, gt=0)
    #: After the AMI link drops mid-Originate the call may still be placed; wait
    #: this long beyond its ring time for its ``ack`` flow before moving on (it is
    #: never re-sent: that could ring an officer twice).
    emergency_callback_grace_seconds: float = Field(30.0, ge=0)
    #: How often an idle callback loop looks at the database (it also wakes for
    #: the next due callback and for alarms raised in this process).
    emergency_callback_poll_seconds: float = Field(5.0, gt=0, le=60)
    #: How often the cached duty roster checks the database for a newer version.
    roster_refresh_seconds: float = Field(15.0, gt=0, le=3600)

    log_level: str = "INFO"
    log_json: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFileSource(settings_cls))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("emergency_fallback_dial")
    @classmethod
    def _dialable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ivr.emergency.roster import valid_dial_string

        bad = [target for target in value if not valid_dial_string(target)]
        if bad:
            raise ValueError(f"not a safe Dial target: {bad}")
        return value

    @field_validator("emergency_callback_context", "emergency_callback_caller_id")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError("must be one line")
        return value

    @field_validator("http_trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    @field_validator("office_hours")
    @classmethod
    def _weekday_keys(cls, value: dict[str, WeeklyHours]) -> dict[str, WeeklyHours]:
        unknown = set(value) - set(WEEKDAY_KEYS)
        if unknown:
            raise ValueError(f"unknown weekday keys {sorted(unknown)}; use {', '.join(WEEKDAY_KEYS)}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ivr.sqlite3').resolve()}"

    @cached_property
    def recordings_root(self) -> Path:
        return self.recordings_dir.resolve()

    @property
    def tts_cache_root(self) -> Path:
        return (self.tts_cache_dir or self.recordings_dir / "cache" / "tts").resolve()

    @property
    def asterisk_root(self) -> Path:
        return self.asterisk_recordings_dir or self.recordings_root

    def to_asterisk_path(self, local: Path) -> str:
        """The name Asterisk plays for a local audio file: its path as Asterisk
        sees the recordings folder, without the extension (Asterisk picks the
        format itself). String work only: this runs for every prompt played."""
        relative = os.path.relpath(local, self.recordings_root)
        if relative.startswith(".."):
            raise ValueError(f"{local} is outside the recordings folder")
        return os.path.join(self.asterisk_root, os.path.splitext(relative)[0])

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> Settings:
        if self.session_idle_minutes > self.session_max_hours * 60:
            raise ValueError("session_idle_minutes must not exceed session_max_hours")
        return self

    @model_validator(mode="after")
    def _cache_under_recordings(self) -> Settings:
        if not self.tts_cache_root.is_relative_to(self.recordings_root):
            raise ValueError("tts_cache_dir must be inside recordings_dir (Asterisk plays from there)")
        return self

    def masked(self) -> dict[str, Any]:
        """For the start-up log: the settings with secrets masked and the
        database password removed."""
        values = self.model_dump(mode="json")
        values["database_url"] = _mask_url(self.effective_database_url)
        return values


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def unknown_variables() -> list[str]:
    """``IVR_*`` environment variables that name no setting (typos are
    otherwise silently ignored)."""
    known = {f"IVR_{name.upper()}" for name in Settings.model_fields} | {"IVR_CONFIG_FILE"}
    return sorted(
        name
        for name in os.environ
        if name.startswith("IVR_") and name not in known and not name.startswith("IVR_TEST_")
    )
