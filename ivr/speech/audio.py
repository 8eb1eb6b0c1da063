"""WAV files Asterisk can play: 8000 Hz, mono, 16-bit signed PCM, format tag 1.

pyttsx3's espeak driver always writes 22050 Hz mono 16-bit (SPEECH.md section 1) and
espeak-ng cannot output 8 kHz itself (section 3d), so every synthesized file is
resampled here. Asterisk's ``format_wav.c`` rejects any other rate ("Unexpected
frequency mismatch") and anything that is not plain PCM (WAVE_FORMAT_EXTENSIBLE
included), so :func:`wav_info` parses the header itself rather than trusting the
``wave`` module, which on Python 3.11 cannot even open an extensible file.

numpy and soxr are imported lazily: the server process only needs :func:`wav_info`
(to validate human recordings); the conversion runs in the TTS worker processes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ASTERISK_RATE",
    "InvalidWav",
    "WavInfo",
    "check_asterisk_wav",
    "convert_to_asterisk",
    "read_pcm16",
    "replace_atomically",
    "wav_info",
    "write_silence",
    "write_tone",
    "write_wav",
]

ASTERISK_RATE = 8000
WAVE_FORMAT_PCM = 1
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: Cache files must be readable by the asterisk user; mkstemp creates 0600.
FILE_MODE = 0o644


class InvalidWav(ValueError):
    """The file is not a WAV we can read, or not one Asterisk can play."""


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int
    frames: int
    seconds: float
    #: 1 = PCM. 0xFFFE (extensible) and everything else is rejected by Asterisk.
    format_tag: int = WAVE_FORMAT_PCM

    @property
    def asterisk_ready(self) -> bool:
        """True when Asterisk's ``.wav`` format module would play this file."""
        return (
            self.format_tag == WAVE_FORMAT_PCM
            and self.rate == ASTERISK_RATE
            and self.channels == 1
            and self.sample_width == 2
            and self.frames > 0
        )


@dataclass(frozen=True)
class _Layout:
    info: WavInfo
    data_offset: int
    #: PCM sample format, also when wrapped in WAVE_FORMAT_EXTENSIBLE.
    pcm: bool


def _read_layout(path: Path) -> _Layout:
    """Walk the RIFF chunks: ``fmt `` for the format, ``data`` for the sample count."""
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise InvalidWav(f"{path}: not a RIFF/WAVE file")
        fmt: tuple[int, int, int, int, int] | None = None
        pcm = False
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                raise InvalidWav(f"{path}: no data chunk")
            chunk_id, size = struct.unpack("<4sI", chunk)
            if chunk_id == b"fmt ":
                body = handle.read(size + (size & 1))
                if len(body) < 16:
                    raise InvalidWav(f"{path}: short fmt chunk")
                tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
                fmt = (tag, channels, rate, block_align, bits)
                pcm = tag == WAVE_FORMAT_PCM
                if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                    # The sub-format GUID starts with the real format tag.
                    pcm = struct.unpack("<H", body[24:26])[0] == WAVE_FORMAT_PCM
            elif chunk_id == b"data":
                if fmt is None:
                    raise InvalidWav(f"{path}: data chunk before fmt chunk")
                tag, channels, rate, block_align, bits = fmt
                if channels < 1 or rate < 1 or block_align < 1:
                    raise InvalidWav(f"{path}: impossible format {fmt}")
                # A writer killed mid-way leaves a header claiming more than the file holds.
                available = os.fstat(handle.fileno()).st_size - handle.tell()
                frames = min(size, max(available, 0)) // block_align
                info = WavInfo(
                    rate=rate,
                    channels=channels,
                    sample_width=(bits + 7) // 8,
                    frames=frames,
                    seconds=frames / rate,
                    format_tag=tag,
                )
                return _Layout(info=info, data_offset=handle.tell(), pcm=pcm)
            else:
                handle.seek(size + (size & 1), os.SEEK_CUR)


def wav_info(path: str | os.PathLike[str]) -> WavInfo:
    """Header facts of a WAV file, without reading the samples."""
    return _read_layout(Path(path)).info


def check_asterisk_wav(path: str | os.PathLike[str]) -> WavInfo:
    """Return the header facts, or raise :class:`InvalidWav` if Asterisk cannot play it."""
    info = wav_info(path)
    if not info.asterisk_ready:
        raise InvalidWav(
            f"{path}: needs PCM (tag 1) 8000 Hz mono 16-bit, got tag {info.format_tag} "
            f"{info.rate} Hz {info.channels} ch {8 * info.sample_width}-bit {info.frames} frames"
        )
    return info


def read_pcm16(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.int16], int]:
    """Samples of a 16-bit PCM WAV as a mono int16 array (channels averaged), and its rate."""
    import numpy as np

    layout = _read_layout(Path(path))
    info = layout.info
    if not layout.pcm or info.sample_width != 2:
        raise InvalidWav(f"{path}: only 16-bit PCM is supported (tag {info.format_tag}, {info.sample_width} bytes)")
    samples = np.fromfile(path, dtype="<i2", count=info.frames * info.channels, offset=layout.data_offset)
    if info.channels > 1:
        samples = samples.reshape(-1, info.channels).mean(axis=1).round().astype(np.int16)
    return samples.astype(np.int16, copy=False), info.rate


def replace_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temp file in the same directory, then ``os.replace``.

    Asterisk (or a concurrent reader) then sees either no file or the whole file,
    never a half-written one (SPEECH.md section 6). The temp file sits in the target
    directory because ``os.replace`` is only atomic within one filesystem.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    replaced = False
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(temp_name, FILE_MODE)
        os.replace(temp_name, target)
        replaced = True
    finally:
        if not replaced:  # also on cancellation: never leave temp files behind
            with contextlib.suppress(OSError):
                os.unlink(temp_name)


def write_wav(path: str | os.PathLike[str], samples: npt.NDArray[np.int16], rate: int = ASTERISK_RATE) -> WavInfo:
    """Write mono int16 samples as a plain PCM WAV (44-byte header, tag 1), atomically."""
    import numpy as np

    data = np.ascontiguousarray(samples, dtype="<i2").tobytes()

    def write(handle: IO[bytes]) -> None:
        with wave.open(handle, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(data)

    replace_atomically(path, write)
    frames = len(data) // 2
    return WavInfo(rate=rate, channels=1, sample_width=2, frames=frames, seconds=frames / rate)


def convert_to_asterisk(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> WavInfo:
    """Resample any 16-bit PCM WAV to 8000 Hz mono PCM with soxr HQ and write ``dst`` atomically.

    soxr HQ rather than audioop: audioop has no anti-alias filter (the 6 kHz alias
    test folds at -2 dB instead of -114 dB), is deprecated and gone in Python 3.13
    (SPEECH.md section 3). soxr takes and returns int16 and is deterministic.
    """
    import soxr  # type: ignore[import-untyped]

    samples, rate = read_pcm16(src)
    if rate != ASTERISK_RATE and len(samples):
        samples = soxr.resample(samples, rate, ASTERISK_RATE, quality="HQ")
    return write_wav(dst, samples, ASTERISK_RATE)


def write_silence(path: str | os.PathLike[str], seconds: float, rate: int = ASTERISK_RATE) -> WavInfo:
    """A valid 8 kHz WAV of digital silence (tests, the Asterisk simulator, padding)."""
    import numpy as np

    return write_wav(path, np.zeros(round(seconds * rate), dtype=np.int16), rate)


def write_tone(
    path: str | os.PathLike[str],
    seconds: float,
    frequency: float = 440.0,
    level_dbfs: float = -12.0,
    rate: int = ASTERISK_RATE,
) -> WavInfo:
    """A sine tone as a valid 8 kHz WAV, e.g. to stand in for a human recording in tests."""
    import numpy as np

    t = np.arange(round(seconds * rate)) / rate
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    samples = (amplitude * np.sin(2 * np.pi * frequency * t)).round().astype(np.int16)
    return write_wav(path, samples, rate)
