"""Fixed prompts: an id, an Indonesian text, an audio file (STYLE.md rule 10).

Flows refer to prompt ids only. The audio for an id is a human recording when one
is present and playable, otherwise the TTS rendering of the catalog text, so the
catalog can be re-voiced (new rate, new espeak-ng) by re-running ``ivr prompts
build`` without touching any flow.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.speech.audio import InvalidWav, check_asterisk_wav
from ivr.speech.normalize import normalize
from ivr.speech.tts import SpeechEngine, SpeechUnavailable

__all__ = ["BuildReport", "PromptCatalog", "PromptLibrary", "UnknownPrompt"]

log = logging.getLogger(__name__)

#: Ids become file names (``<id>.wav``) and appear in logs: keep them boring.
_PROMPT_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*")


class UnknownPrompt(KeyError):
    """A flow asked for a prompt id that is not in the catalog."""


class PromptCatalog:
    """Prompt id -> Indonesian text, validated once at load."""

    def __init__(self, prompts: Mapping[str, str]) -> None:
        problems = []
        for prompt_id, text in prompts.items():
            if not isinstance(prompt_id, str) or not _PROMPT_ID.fullmatch(prompt_id):
                problems.append(f"invalid id {prompt_id!r} (use a-z, 0-9, '_', '.', '-')")
            elif not isinstance(text, str) or not normalize(text):
                problems.append(f"{prompt_id}: text must be a non-empty string with something to say")
        if problems:
            raise ValueError("bad prompt catalog: " + "; ".join(problems))
        self._prompts = dict(prompts)

    @classmethod
    def load(cls, path: str | Path) -> PromptCatalog:
        """Read a TOML file with a single ``[prompts]`` table of id = "text"."""
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        prompts = data.get("prompts")
        if not isinstance(prompts, dict):
            raise ValueError(f"{path}: missing [prompts] table")
        return cls(prompts)

    def text(self, prompt_id: str) -> str:
        try:
            return self._prompts[prompt_id]
        except KeyError:
            raise UnknownPrompt(prompt_id) from None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._prompts)

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self._prompts

    def __iter__(self) -> Iterator[str]:
        return iter(self._prompts)

    def __len__(self) -> int:
        return len(self._prompts)


@dataclass(frozen=True)
class BuildReport:
    total: int
    #: Synthesized by this build.
    rendered: int
    #: Already in the TTS cache.
    cached: int
    #: Also have a valid human recording (which is what callers hear).
    recorded: int
    #: Prompt id -> error, for prompts that could not be rendered.
    failed: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


class PromptLibrary:
    """Resolves prompt ids to playable files: human recording first, TTS otherwise."""

    def __init__(self, catalog: PromptCatalog, recordings_dir: Path, language: str, engine: SpeechEngine) -> None:
        self.catalog = catalog
        self.recordings_dir = Path(recordings_dir)
        self.language = language
        self.engine = engine
        # path -> ((mtime_ns, size), playable): validate and warn once per file version,
        # not on every call that plays the prompt.
        self._checked: dict[Path, tuple[tuple[int, int], bool]] = {}

    def recording_path(self, prompt_id: str) -> Path:
        """Where a human recording of ``prompt_id`` would be."""
        return self.recordings_dir / "prompts" / self.language / f"{prompt_id}.wav"

    def _playable_recording(self, prompt_id: str) -> Path | None:
        path = self.recording_path(prompt_id)
        try:
            stat = path.stat()
        except OSError:
            return None
        version = (stat.st_mtime_ns, stat.st_size)
        known = self._checked.get(path)
        if known is not None and known[0] == version:
            return path if known[1] else None
        try:
            check_asterisk_wav(path)
            playable = True
        except (InvalidWav, OSError) as exc:
            # Asterisk would refuse it ("Unexpected frequency mismatch") and the caller
            # would hear silence: better the TTS version.
            log.warning("ignoring recording %s for prompt %s: %s", path, prompt_id, exc)
            playable = False
        self._checked[path] = (version, playable)
        return path if playable else None

    def path(self, prompt_id: str) -> Path | None:
        """The file to play for ``prompt_id``, or None if nothing is rendered yet."""
        text = self.catalog.text(prompt_id)
        return self._playable_recording(prompt_id) or self.engine.cached(text)

    async def ensure(self, prompt_id: str, timeout: float | None = None) -> Path:
        """Like :meth:`path`, but renders a missing TTS file (may raise SpeechUnavailable)."""
        found = self.path(prompt_id)
        if found is not None:
            return found
        return await self.engine.render(self.catalog.text(prompt_id), timeout=timeout)

    async def build(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Render every catalog prompt missing from the TTS cache.

        Prompts with a human recording are rendered too: the TTS file is the fallback
        if the recording is removed or found unplayable. Failures are collected, not
        raised, so one bad prompt does not stop the build. ``progress(done, total)``
        is called at the start and after each prompt (for a tqdm bar).
        """
        started = time.perf_counter()
        ids = self.catalog.ids
        total = len(ids)
        done = rendered = cached = 0
        failed: dict[str, str] = {}
        recorded = sum(1 for prompt_id in ids if self._playable_recording(prompt_id) is not None)
        if progress is not None:
            progress(0, total)
        # As many renders in flight as there are workers: more would only queue, and a
        # queued render's wait counts against its timeout.
        slots = asyncio.Semaphore(self.engine.workers)

        async def one(prompt_id: str) -> None:
            nonlocal done, rendered, cached
            text = self.catalog.text(prompt_id)
            if self.engine.cached(text) is not None:
                cached += 1
            else:
                async with slots:
                    try:
                        await self.engine.render(text)
                        rendered += 1
                    except (SpeechUnavailable, ValueError) as exc:
                        failed[prompt_id] = str(exc)
            done += 1
            if progress is not None:
                progress(done, total)

        # TaskGroup: an unexpected error cancels the other renders instead of orphaning them.
        async with asyncio.TaskGroup() as group:
            for prompt_id in ids:
                group.create_task(one(prompt_id), name=f"prompt-{prompt_id}")
        report = BuildReport(
            total=total,
            rendered=rendered,
            cached=cached,
            recorded=recorded,
            failed=failed,
            seconds=time.perf_counter() - started,
        )
        log.info(
            "prompts built: %d total, %d rendered, %d cached, %d recorded, %d failed in %.1f s",
            total,
            rendered,
            cached,
            recorded,
            len(failed),
            report.seconds,
        )
        return report
