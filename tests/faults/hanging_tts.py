"""A TTS worker function that hangs forever, as espeak can, on texts with a
marker. In a module of its own: each fresh worker process imports it by name
before its first synthesis, and a heavy module would eat the synthesis timeout."""

from __future__ import annotations

import time

from ivr.speech import worker
from ivr.speech.worker import SynthJob, SynthResult

HANG_MARKER = "macet"


def synth_hanging_on_marker(job: SynthJob) -> SynthResult:
    if HANG_MARKER in job.text:
        time.sleep(3600)
    return worker.synthesize(job)
