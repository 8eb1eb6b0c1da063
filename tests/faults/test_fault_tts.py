"""TTS hang: the speech worker never returns from one synthesis. The caller
waiting for that read-back hears the fallback prompt within the configured
wait (2 s), the call goes on, and the hung worker is killed and replaced: the
next synthesis works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fault_walks import REGISTERED, operator_message, place, set_up, ticket_of
from hanging_tts import HANG_MARKER, synth_hanging_on_marker
from helpers import set_office_override
from sqlalchemy import select, update

from ivr import app
from ivr.config import Settings
from ivr.simulator import place_call
from ivr.speech import audio
from ivr.speech.tts import SpeechEngine, Voice
from ivr.storage import models

pytestmark = pytest.mark.fault("TTS hang")

#: Most a caller may wait for a read-back before hearing the fallback.
CALLER_WAIT = 2.0


async def test_a_hung_worker_gives_the_fallback_within_2s_and_is_replaced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, fault: Any
):
    settings = settings.model_copy(update={"tts_call_wait": CALLER_WAIT, "tts_timeout": 3.0})

    def hanging_speech(settings: Settings) -> SpeechEngine:
        voice = Voice(name=settings.tts_voice, rate=settings.tts_rate, volume=settings.tts_volume)
        return SpeechEngine(
            settings.tts_cache_root, voice, workers=1, timeout=settings.tts_timeout, synth=synth_hanging_on_marker
        )

    monkeypatch.setattr(app, "build_speech", hanging_speech)
    async with app.running(settings, migrate=False) as runtime:
        await set_up(runtime)
        await set_office_override(runtime, "open")
        message = await place(runtime, await operator_message(runtime))
        number = await ticket_of(runtime, message.record.uniqueid)
        async with runtime.sessions.begin() as session:
            await session.execute(
                update(models.Ticket)
                .where(models.Ticket.number == number)
                .values(note_for_caller=f"Jalan menuju lokasi {HANG_MARKER}, kegiatan mundur satu jam.")
            )
        [hung_pid] = runtime.speech.health()["worker_pids"]

        record = await place_call(
            "127.0.0.1", runtime.agi.bound_port, caller_id=REGISTERED, keys=["3", f"{number}#", "0", "5", "5", "5"]
        )
        assert record.result == "OK", record.render()  # the call went on to its goodbye
        async with runtime.sessions() as session:
            timeline = list(
                await session.scalars(
                    select(models.TicketEvent)
                    .join(models.Call, models.Call.id == models.TicketEvent.call_id)
                    .where(models.Call.uniqueid == record.uniqueid)
                    .order_by(models.TicketEvent.seq)
                )
            )
        # The status was played, then the note's read-back was awaited: the
        # fallback follows the status within the caller's wait.
        (fallback,) = [i for i, e in enumerate(timeline) if e.data.get("prompt") == "track.note_unavailable"]
        waited = (timeline[fallback].at - timeline[fallback - 1].at).total_seconds()
        assert timeline[fallback - 1].kind == "prompt"
        assert waited < CALLER_WAIT + 0.5, f"the caller waited {waited:.1f} s for the fallback"

        path = await runtime.speech.render("Sistem kembali normal.", timeout=30.0)
        assert audio.wav_info(Path(path)).asterisk_ready
        health = runtime.speech.health()
        assert health["restarts"] >= 1 and health["status"] == "ok"
        assert hung_pid not in health["worker_pids"]
