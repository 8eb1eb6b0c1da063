"""The ``alert`` script: the protocol desk's end of an urgent alert.

``ivr.alerts`` originates a call to the desk into the alert context with the
alert's id as the extension; when the desk answers, the dialplan runs
``AGI(agi://.../alert?lang=id,${EXTEN})``. The desk hears what the caller
reported (the ticket number, who, the activity's date and time, then the
recorded description) and presses 1 to acknowledge, which closes the alarm.
No 1 (or a hang-up) releases the alert: the desk is called again later.
"""

from __future__ import annotations

from datetime import date, time

from ivr.agi.session import CallerHungUp, Environment
from ivr.alerts import AlertService, AlertView
from ivr.call import Call, Say
from ivr.flows.messages import play_recording
from ivr.services import Services
from ivr.speech.normalize import say_date, say_digits, say_time
from ivr.storage.request_models import ALERT_ACKNOWLEDGED

MAX_TRIES = 3
ACK_TIMEOUT = 8.0


def alert_id_of(environment: Environment) -> int | None:
    """The alert's id: the script's first argument, else the extension."""
    raw = environment.args[0] if environment.args else environment.get("extension")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else None


def summary_text(view: AlertView) -> str:
    """What the desk hears before the recording, in words."""
    parts = [f"Tiket nomor {say_digits(view.ticket_number or '')}."]
    if view.office_name:
        parts.append(f"Dari {view.office_name}.")
    elif view.caller_e164:
        national = "0" + view.caller_e164[3:] if view.caller_e164.startswith("+62") else view.caller_e164
        parts.append(f"Dari nomor {say_digits(national)}.")
    day, start = view.details.get("activity_date"), view.details.get("start_time")
    if isinstance(day, str) and isinstance(start, str):
        try:
            parts.append(f"Kegiatan {say_date(date.fromisoformat(day))}, {say_time(time.fromisoformat(start))}.")
        except ValueError:
            pass
    return " ".join(parts)


async def run(call: Call, services: Services) -> None:
    await call.answer()
    call.enter("alert")
    alert_id = alert_id_of(call.environment)
    alerts = services.alerts
    view = await alerts.get(alert_id) if alerts is not None and alert_id is not None else None
    call.record.add("alert", alert=alert_id, found=view is not None)
    if alerts is None or view is None:
        await call.play("alert.unknown")
        await call.hangup()
        return
    call.record.snapshot.ticket_details["alert_for"] = view.ticket_number
    if view.state == ALERT_ACKNOWLEDGED:
        await call.play("alert.already")
        await call.hangup()
        return
    try:
        acknowledged = await _present_until_acknowledged(call, alerts, view)
    except CallerHungUp:
        await alerts.release(view.id, "hung-up")
        raise
    if not acknowledged:
        await alerts.release(view.id)
        await call.play("alert.not_acknowledged")
    await call.hangup()


async def _present_until_acknowledged(call: Call, alerts: AlertService, view: AlertView) -> bool:
    for _ in range(MAX_TRIES):
        call.enter("alert:present")
        key = await call.play("alert.intro", Say(summary_text(view), fallback="alert.summary_unavailable"), escape="1")
        if key is None and view.recording_path:
            key = await play_recording(call, view.recording_path, escape="1")
        if key != "1":
            answer = await call.read_digits("alert.press_1", max_digits=1, timeout=ACK_TIMEOUT, purpose="acknowledge")
            key = answer.digits
        if key == "1":
            call.enter("alert:acknowledged")
            by = await call.get_variable("CONNECTEDLINE(num)") or call.environment.channel
            first = await alerts.acknowledge(view.id, by)
            call.record.add("alert-acknowledged", alert=view.id, first=first, by=by)
            await call.play("alert.acknowledged" if first else "alert.already")
            return True
    return False
