"""Turning a FastAGI session into a ``Call`` and running its flow.

This is the one place that decides how a call ends on the record: completed,
abandoned at a step (the caller hung up), or failed (a bug, a stuck Asterisk).
Whatever happens, the record is closed in ``finally``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime

from ivr import callerid
from ivr.agi.protocol import UnexpectedReply
from ivr.agi.server import Handler
from ivr.agi.session import CallerHungUp, CommandTimeout, Session
from ivr.audio import AudioLibrary
from ivr.call import Call, CallerInfo
from ivr.channel_vars import RESULT_FAILED, RESULT_OK
from ivr.eventbus import CallEnded, CallStarted
from ivr.flows import Flow, FlowRegistry
from ivr.records import STORAGE_ERRORS, CallRecorder
from ivr.services import Services
from ivr.storage.calls import CallSnapshot

log = logging.getLogger("ivr.calls")

#: Seconds the final save may hold the FastAGI session before it is closed.
RELEASE_CHANNEL_AFTER = 5.0


@functools.lru_cache(maxsize=4096)
def _caller_number(raw: str, presentation: int | None) -> callerid.CallerNumber:
    """``callerid.normalize``, remembered: the same offices call all day, and
    libphonenumber's parsing is among the dearest work of a call's start."""
    return callerid.normalize(raw, presentation=presentation)


class CallHandler:
    def __init__(self, services: Services, audio: AudioLibrary) -> None:
        self.services = services
        self.audio = audio
        self.active: dict[str, Call] = {}

    def routes(self, registry: FlowRegistry) -> dict[str, Handler]:
        return {name: self._bind(flow) for name, flow in registry.items()}

    def _bind(self, flow: Flow) -> Handler:
        async def handle(session: Session) -> None:
            await self.run(session, flow)

        return handle

    async def identify(self, session: Session) -> CallerInfo:
        env = session.environment
        pres = env.get("callingpres")
        number = _caller_number(env.get("callerid"), int(pres) if pres.isdigit() else None)
        name = env.get("calleridname")
        info = CallerInfo(number=number, name_from_network="" if name == "unknown" else name)
        if number.e164:
            try:
                match = await self.services.directory.lookup(number.e164)
            except STORAGE_ERRORS as exc:
                log.warning("caller directory unavailable (%s): treating caller as unknown", type(exc).__name__)
                match = None
            if match is not None:
                info.caller_id = match.caller_id
                info.caller_name = match.name
                info.office_id = match.office_id
                info.office_name = match.office_name
        return info

    async def run(self, session: Session, flow: Flow) -> None:
        env = session.environment
        started = datetime.now(UTC)
        caller = await self.identify(session)
        snapshot = CallSnapshot(
            uniqueid=env.uniqueid or f"unknown-{id(session)}",
            linkedid=env.options.get("linkedid", ""),
            channel=env.channel,
            script=env.script,
            started_at=started,
            # A withheld number is not ours to keep; "unknown" is no number.
            caller_number=caller.number.raw if caller.number.kind not in ("withheld", "unknown") else "",
            caller_e164=caller.number.e164,
            caller_name=caller.name_from_network,
            caller_id=caller.caller_id,
            office_id=caller.office_id,
            dialed_number=env.get("dnid") if env.get("dnid") != "unknown" else env.get("extension"),
        )
        recorder = CallRecorder(snapshot, self.services.spool)
        call = Call(
            session=session,
            voice=self.audio,
            record=recorder,
            caller=caller,
            recordings_dir=self.services.settings.recordings_root,
            started_at=started,
        )
        log.info("call started: script=%s caller=%s registered=%s", env.script, caller.number.kind, caller.registered)
        key = snapshot.uniqueid  # the snapshot's may change if Asterisk reused it
        self.active[key] = call
        self.services.events.publish(CallStarted(key, call))
        outcome, step = "failed", ""
        try:
            recorder.save_in_background()
            async with asyncio.timeout(self.services.settings.call_max_seconds):
                await flow(call, self.services)
            outcome = call.outcome
            await self._report(call, RESULT_OK)
        except CallerHungUp:
            outcome, step = (call.outcome, "") if call.served else ("abandoned", call.step)
        except CommandTimeout as exc:
            log.error("Asterisk stopped answering: %s", exc)
            step = call.step
        except UnexpectedReply as exc:
            # A peer out of protocol, not a fault of ours: no traceback.
            log.error("Asterisk sent a reply out of protocol at %s: %s", call.step, exc)
            step = call.step
            call.record.add("error", what="protocol", detail=str(exc)[:200])
            await self._report(call, RESULT_FAILED)
        except asyncio.CancelledError:
            # The server stops and the grace period is over: the record says where.
            step = call.step
            call.record.add("error", what="shutdown")
            raise
        except TimeoutError:
            log.error("call exceeded %ss; ending it", self.services.settings.call_max_seconds)
            step = call.step
            await self._report(call, RESULT_FAILED)
        except Exception:
            log.exception("flow %s failed at %s", env.script, call.step)
            step = call.step
            await self._report(call, RESULT_FAILED)
        finally:
            del self.active[key]
            self.services.events.publish(CallEnded(key, outcome, step))
            # Normally the record is written before Asterisk gets its channel
            # back; a slow database must not hold the channel for long.
            final = asyncio.create_task(recorder.finish(outcome, step), name=f"finish-{key}")
            await asyncio.wait({final}, timeout=RELEASE_CHANNEL_AFTER)
            await session.finish()
            await final
            log.info("call ended: outcome=%s step=%s ticket=%s", outcome, step, recorder.ticket_number)

    async def _report(self, call: Call, result: str) -> None:
        """Tell the dialplan how the flow ended; on FAILED its failure exit
        apologises to the caller. The socket may already be gone."""
        if not call.session.usable:
            return
        try:
            await call.set_result(result)
        except Exception as exc:  # a broken session must not hide the outcome
            log.info("could not report %s to Asterisk: %s", result, exc)
