"""Configuration: defaults in code, an optional TOML file, then ``IVR_*`` variables.

Validated once at start-up into a frozen object. Secrets are ``SecretStr`` so
they print as ``**********``; live clients are built from this, never stored in it.
"""

from __future__ import annotations

import os
import tomllib
from datetime import time
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

    ami_host: str = ""
    ami_port: int = Field(5038, ge=1, le=65535)
    ami_username: str = ""
    ami_secret: SecretStr = SecretStr("")

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

    @property
    def recordings_root(self) -> Path:
        return self.recordings_dir.resolve()

    @property
    def tts_cache_root(self) -> Path:
        return (self.tts_cache_dir or self.recordings_dir / "cache" / "tts").resolve()

    @property
    def asterisk_root(self) -> Path:
        return (self.asterisk_recordings_dir or self.recordings_root)

    def to_asterisk_path(self, local: Path) -> str:
        """The name Asterisk plays for a local audio file: its path as Asterisk
        sees the recordings folder, without the extension (Asterisk picks the
        format itself)."""
        relative = local.resolve().relative_to(self.recordings_root)
        return str(self.asterisk_root / relative.with_suffix(""))

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
