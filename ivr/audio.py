"""What a call plays: catalog prompts and read-backs, resolved to files Asterisk can play."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from ivr.config import Settings
from ivr.speech.audio import write_silence
from ivr.speech.prompts import PromptLibrary
from ivr.speech.tts import SpeechEngine, SpeechUnavailable

log = logging.getLogger("ivr.audio")

#: How long a prompt's resolved file is reused without looking at the disk
#: again: a human recording dropped into recordings/prompts/ wins within this.
PROMPT_PATH_TTL = 10.0


class AudioLibrary:
    """Implements ``ivr.call.Voice``. A caller never waits longer than
    ``tts_call_wait`` for synthesis: past that the flow plays its fallback."""

    def __init__(self, settings: Settings, prompts: PromptLibrary, engine: SpeechEngine) -> None:
        self.settings = settings
        self.prompts = prompts
        self.engine = engine
        self._silence = settings.recordings_root / "cache" / "silence-100ms.wav"
        self._prompt_paths: dict[str, tuple[float, Path]] = {}

    def prepare(self) -> None:
        """Files every call needs, written before the first call arrives."""
        if not self._silence.exists():
            write_silence(self._silence, seconds=0.1)

    def publish_stable_names(self) -> int:
        """Give every rendered prompt a fixed name the dialplan can play
        (``cache/stable/<lang>/<id>.wav``: the failure context's apology)."""
        folder = self.settings.recordings_root / "cache" / "stable" / self.settings.language
        folder.mkdir(parents=True, exist_ok=True)
        published = 0
        for prompt_id in self.prompts.catalog.ids:
            source = self.prompts.path(prompt_id)
            if source is None:
                continue
            target = folder / f"{prompt_id}.wav"
            temporary = target.with_suffix(".tmp")
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
            published += 1
        return published

    def prompt_text(self, prompt_id: str) -> str:
        return self.prompts.catalog.text(prompt_id)

    async def prompt_file(self, prompt_id: str) -> Path | None:
        known = self._prompt_paths.get(prompt_id)
        if known is not None and time.monotonic() - known[0] < PROMPT_PATH_TTL:
            return known[1]
        path = self.prompts.path(prompt_id)
        if path is not None:
            self._prompt_paths[prompt_id] = (time.monotonic(), path)
            return path
        log.warning("prompt %s not rendered yet; synthesizing during the call", prompt_id)
        return await self.speech_file(self.prompt_text(prompt_id))

    async def speech_file(self, text: str) -> Path | None:
        cached = self.engine.cached(text)
        if cached is not None:
            return cached
        try:
            return await self.engine.render(text, timeout=self.settings.tts_call_wait)
        except SpeechUnavailable as exc:
            log.warning("speech unavailable: %s", exc)
            return None

    def silence_file(self) -> Path:
        return self._silence

    def asterisk_name(self, path: Path) -> str:
        return self.settings.to_asterisk_path(path)
