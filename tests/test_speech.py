"""Speech pipeline against the real pyttsx3 + espeak-ng, in real worker processes."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.speech import audio, worker
from ivr.speech.prompts import PromptCatalog, PromptLibrary, UnknownPrompt
from ivr.speech.tts import SpeechEngine, SpeechUnavailable, Voice
from ivr.speech.worker import SynthJob, SynthResult

SENTENCE = "Selamat datang di layanan Call Center Protokol, Sekretariat Daerah Kabupaten."
HANG_MARKER = "macet"


def synth_hanging_on_marker(job: SynthJob) -> SynthResult:
    """Worker seam: hangs like espeak does in P3 when the text contains the marker.

    Top-level so it pickles into the forkserver workers.
    """
    if HANG_MARKER in job.text:
        time.sleep(3600)
    return worker.synthesize(job)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SpeechEngine]:
    async with SpeechEngine(tmp_path / "tts", Voice(), workers=1, timeout=5.0) as started:
        yield started


def _is_dead(pid: int) -> bool:
    """Gone, or a zombie waiting for the forkserver (its parent) to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _format_tag(path: Path) -> int:
    with open(path, "rb") as handle:
        header = handle.read(22)
    return int(struct.unpack("<H", header[20:22])[0])


# ---------------------------------------------------------------- engine


async def test_render_writes_an_asterisk_playable_wav_with_its_text(engine: SpeechEngine) -> None:
    path = await engine.render(SENTENCE)

    info = audio.wav_info(path)
    assert (info.rate, info.channels, info.sample_width, info.format_tag) == (8000, 1, 2, 1)
    assert _format_tag(path) == 1  # plain PCM, not WAVE_FORMAT_EXTENSIBLE
    assert path.stat().st_size == 44 + 2 * info.frames
    # ~11 words at 150 wpm: a few seconds of speech, not an empty or runaway file.
    assert 2.0 < info.seconds < 10.0
    assert path.stat().st_mode & 0o777 == 0o644  # readable by the asterisk user
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == SENTENCE
    key = path.stem
    assert path == engine.cache_dir / key[:2] / f"{key}.wav"
    assert not list(path.parent.glob(".*.tmp"))  # atomic writes leave nothing behind


async def test_cache_hit_skips_the_worker(engine: SpeechEngine) -> None:
    assert engine.cached(SENTENCE) is None
    first = await engine.render(SENTENCE)
    misses = engine.health()["misses"]

    started = time.perf_counter()
    second = await engine.render(SENTENCE)
    elapsed = time.perf_counter() - started

    assert second == first
    assert engine.health()["misses"] == misses
    assert elapsed < 0.05
    assert engine.cached(SENTENCE) == first
    # Keyed on the normalized text: both spellings say the same words.
    assert engine.path_for("pukul 08.30") == engine.path_for("pukul delapan lewat tiga puluh menit")


async def test_concurrent_identical_requests_share_one_synthesis(engine: SpeechEngine) -> None:
    text = "Agenda Bupati hari ini pukul 09.00 WIB."
    paths = await asyncio.gather(*(engine.render(text) for _ in range(5)))

    assert len(set(paths)) == 1
    health = engine.health()
    assert health["misses"] == 1
    assert health["failures"] == 0
    assert health["status"] == "ok"


async def test_voice_rate_really_applies(tmp_path: Path) -> None:
    """Guards the espeak-ng async-queue race (worker._wait_quiet): a dropped rate
    change would silently render at the default speed under a key claiming 150."""
    text = "Mohon tunggu sebentar, kami sedang memeriksa data anda."
    seconds = {}
    for rate in (100, 200):
        async with SpeechEngine(tmp_path / "tts", Voice(rate=rate), workers=1) as engine:
            seconds[rate] = audio.wav_info(await engine.render(text)).seconds
    assert 1.6 < seconds[100] / seconds[200] < 2.4


async def test_a_hanging_worker_is_killed_and_replaced(tmp_path: Path) -> None:
    timeout = 1.5
    async with SpeechEngine(tmp_path / "tts", workers=1, timeout=timeout, synth=synth_hanging_on_marker) as engine:
        [hung_pid] = engine.health()["worker_pids"]

        started = time.perf_counter()
        with pytest.raises(SpeechUnavailable):
            await engine.render(f"Sistem {HANG_MARKER} sekarang.")
        assert time.perf_counter() - started < timeout + 0.5

        path = await engine.render("Sistem kembali normal.", timeout=15.0)
        assert audio.wav_info(path).asterisk_ready

        health = engine.health()
        assert health["restarts"] == 1
        assert health["failures"] == 1
        assert health["status"] == "ok"
        assert hung_pid not in health["worker_pids"]
        assert engine.cached(f"Sistem {HANG_MARKER} sekarang.") is None
        assert _is_dead(hung_pid)  # SIGKILLed, not merely abandoned


async def test_a_caller_that_gives_up_does_not_cancel_the_render(tmp_path: Path) -> None:
    async with SpeechEngine(tmp_path / "tts", workers=1, timeout=5.0) as engine:
        text = "Mohon tunggu sebentar."
        with pytest.raises(SpeechUnavailable):
            await engine.render(text, timeout=0.001)
        path = await engine.render(text)  # joins the render still in flight
        assert audio.wav_info(path).asterisk_ready
        assert engine.health()["misses"] == 1


async def test_workers_that_cannot_start_report_down(tmp_path: Path) -> None:
    # pyttsx3 only emits an "error" event for an unknown voice; the initializer turns
    # it into a failure instead of silently speaking with the previous voice.
    engine = SpeechEngine(tmp_path / "tts", Voice(name="xx-no-such-voice"), retry_after=60.0)
    with pytest.raises(SpeechUnavailable, match="failed to start"):
        await engine.start()
    assert engine.health()["status"] == "down"
    with pytest.raises(SpeechUnavailable):  # no respawn storm within retry_after
        await engine.render("Halo.")
    await engine.close()


async def test_render_refuses_without_workers_and_empty_text(tmp_path: Path) -> None:
    engine = SpeechEngine(tmp_path / "tts")
    with pytest.raises(SpeechUnavailable):
        await engine.render("Belum dimulai.")
    with pytest.raises(ValueError, match="nothing to say"):
        await engine.render("🙏 \n ")
    assert engine.health()["status"] == "down"
    await engine.close()


# ---------------------------------------------------------------- prompts


def _write_catalog(path: Path) -> PromptCatalog:
    path.write_text(
        '[prompts]\nwelcome = "Selamat datang di Call Center Protokol."\ngoodbye = "Terima kasih, sampai jumpa."\n',
        encoding="utf-8",
    )
    return PromptCatalog.load(path)


async def test_prompt_library_prefers_a_valid_human_recording(
    tmp_path: Path, engine: SpeechEngine, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = _write_catalog(tmp_path / "prompts_id.toml")
    library = PromptLibrary(catalog, tmp_path / "recordings", "id", engine)
    recording = library.recording_path("welcome")
    assert recording == tmp_path / "recordings" / "prompts" / "id" / "welcome.wav"
    audio.write_tone(recording, 1.0)

    assert library.path("welcome") == recording
    assert library.path("goodbye") is None  # not built yet

    progress: list[tuple[int, int]] = []
    report = await library.build(lambda done, total: progress.append((done, total)))
    assert (report.total, report.rendered, report.cached, report.recorded, report.ok) == (2, 2, 0, 1, True)
    assert progress[0] == (0, 2) and progress[-1] == (2, 2)

    goodbye = library.path("goodbye")
    assert goodbye is not None and goodbye.parent.parent == engine.cache_dir
    assert goodbye.with_suffix(".txt").read_text(encoding="utf-8") == "Terima kasih, sampai jumpa."
    assert library.path("welcome") == recording

    again = await library.build()
    assert (again.rendered, again.cached) == (0, 2)

    # An unplayable recording (22050 Hz, what pyttsx3 writes) is ignored with a warning.
    import numpy as np

    audio.write_wav(recording, np.zeros(22050, dtype=np.int16), rate=22050)
    with caplog.at_level(logging.WARNING, logger="ivr.speech.prompts"):
        fallback = library.path("welcome")
    assert fallback == engine.cached(catalog.text("welcome"))
    assert "ignoring recording" in caplog.text

    with pytest.raises(UnknownPrompt):
        library.path("nope")


def test_prompt_catalog_validation(tmp_path: Path) -> None:
    catalog = _write_catalog(tmp_path / "ok.toml")
    assert catalog.ids == ("welcome", "goodbye")
    assert "welcome" in catalog and len(catalog) == 2
    (tmp_path / "no_table.toml").write_text('welcome = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[prompts\]"):
        PromptCatalog.load(tmp_path / "no_table.toml")
    with pytest.raises(ValueError, match="invalid id"):
        PromptCatalog({"../evil": "teks"})
    with pytest.raises(ValueError, match="non-empty"):
        PromptCatalog({"kosong": "  "})


# ---------------------------------------------------------------- audio


def test_convert_resamples_22050_to_8000_and_keeps_duration(tmp_path: Path) -> None:
    source = tmp_path / "src.wav"
    audio.write_tone(source, 2.0, frequency=1000.0, rate=22050)
    info = audio.convert_to_asterisk(source, tmp_path / "out.wav")
    assert info.asterisk_ready
    assert audio.wav_info(tmp_path / "out.wav") == info
    assert abs(info.seconds - 2.0) < 0.001


def test_wav_info_reports_extensible_format_as_not_playable(tmp_path: Path) -> None:
    path = tmp_path / "ext.wav"
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16) + struct.pack("<HHI", 22, 16, 4)
    fmt += struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    data = b"\x00\x00" * 800
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)

    info = audio.wav_info(path)
    assert (info.rate, info.frames, info.format_tag) == (8000, 800, 0xFFFE)
    assert not info.asterisk_ready
    with pytest.raises(audio.InvalidWav):
        audio.check_asterisk_wav(path)
    silence = audio.write_silence(tmp_path / "silence.wav", 0.5)
    assert silence.asterisk_ready and silence.frames == 4000


async def test_close_turns_pending_renders_into_speech_unavailable(tmp_path: Path) -> None:
    engine = SpeechEngine(tmp_path / "tts", workers=1, timeout=30.0, synth=synth_hanging_on_marker)
    await engine.start()
    render = asyncio.create_task(engine.render(f"Sistem {HANG_MARKER}.", timeout=30.0))
    done, _ = await asyncio.wait({render}, timeout=0.5)  # long enough to reach the worker
    assert not done  # hanging in the worker
    started = time.perf_counter()
    await engine.close()
    assert time.perf_counter() - started < 2.0  # the hung worker is killed, not awaited
    with pytest.raises(SpeechUnavailable, match="closed"):
        await render
    assert engine.health()["status"] == "down"
