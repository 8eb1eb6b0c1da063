"""Main-menu option 2 end to end: a simulated Asterisk calls the running server
over FastAGI; the tests check what the caller heard and what the database
holds (kind, date, time, recording, status, timeline), and the urgent alert of
a sudden schedule change: its event, its call to the protocol desk over the
fake AMI, and the desk's acknowledgement."""

from __future__ import annotations

import asyncio
import re
from datetime import time, timedelta

import pytest
from fake_ami import FakeAMI, OriginateOutcome
from request_fixtures import (
    OTHER_OFFICE,
    REGISTERED,
    Center,
    ami_center,
    ami_settings,
    center,
    fake_ami,
    in_days,
    keyed,
    recording_path_pattern,
    spoken_number,
    words,
)
from sqlalchemy import select

from ivr import ticket_number, tickets
from ivr.alerts import AlertService
from ivr.flows.submit import when_text
from ivr.simulator import place_call
from ivr.speech.normalize import say_date
from ivr.storage.request_models import ALERT_ACKNOWLEDGED, ALERT_CALLING, ALERT_PENDING, UrgentAlert

__all__ = ["ami_center", "ami_settings", "center", "fake_ami"]  # fixtures used by name

DATE_INVALID = "Maaf, tanggal yang Anda masukkan tidak valid."
DATE_PAST = (
    "Maaf, tanggal tersebut sudah lewat. Permohonan hanya dapat diajukan untuk hari ini atau tanggal yang akan datang."
)
TIME_INVALID = "Maaf, jam yang Anda masukkan tidak valid."
NO_INPUT = "Maaf, kami belum menerima masukan Anda."
CUT = "Rekaman Anda mencapai batas dua menit."
SAVED = "Terima kasih. Pengajuan Anda telah kami terima dan akan segera ditindaklanjuti."
SAVED_URGENT = (
    "Terima kasih. Laporan perubahan jadwal Anda telah kami terima, dan petugas protokol segera kami beri tahu."
)
GOODBYE = "Terima kasih telah menghubungi Call Center Protokol. Selamat bertugas."


def submission(kind: str, day: str, start: str, *recording: str) -> list[str]:
    """Main menu 2, the kind, date, time, "1 correct", then the recording keys."""
    return ["2", kind, day, start, "1", *recording]


async def test_a_date_ended_with_hash_as_the_prompt_asks_is_taken_whole(center: Center):
    # "...empat angka tahun, lalu tekan tanda pagar": the "#" ends the date and
    # must not spill into the time prompt as an empty answer.
    day = in_days(center, 10)
    record = await center.call(keys=[*submission("1", keyed(day) + "#", "0930#", "rec:2", "1"), ""])
    assert NO_INPUT not in record.spoken and SAVED in record.spoken
    details = (await center.stored(record.uniqueid)).ticket.details
    assert (details["activity_date"], details["start_time"]) == (day.isoformat(), "09:30")


async def test_request_is_read_back_recorded_played_back_saved_and_numbered_twice(center: Center):
    day = in_days(center, 10)
    record = await center.call(keys=[*submission("1", keyed(day), "0930", "rec:5", "3", "1"), "9", ""])
    heard = record.spoken
    assert when_text(day, time(9, 30), "Asia/Jakarta") in heard
    assert f"Tanggal kegiatan {say_date(day)}, pukul sembilan lewat tiga puluh menit Waktu Indonesia Barat." in heard
    assert "[beep]" in heard and "01-description" in heard  # the recording, played back on request
    assert SAVED in heard and heard[-1] == GOODBYE

    stored = await center.stored(record.uniqueid)
    ticket = stored.ticket
    assert (ticket.kind, ticket.status, ticket.priority) == ("request", "open", "normal")
    assert ticket_number.is_valid(ticket.number)
    assert ticket.details["activity_date"] == day.isoformat() and ticket.details["start_time"] == "09:30"
    assert ticket.office_id is not None and ticket.caller_e164 == "+6281234567890"
    # Stored by date and ticket, under a name the server made; 8 kHz WAV; linked with its duration.
    (recording,) = stored.recordings
    assert recording_path_pattern(ticket.number, "description").fullmatch(recording.path)
    assert ticket.details["description"] == recording.path
    assert recording.kind == "description" and 4.5 <= recording.seconds <= 5.0
    center.assert_8khz_wav(recording.path)
    # The number twice, then once more on 9.
    assert spoken_number(heard) == words(ticket.number) * 3
    assert stored.data("submit-date") == [{"date": day.isoformat(), "time": "09:30"}]
    assert "playback" in stored.kinds()
    assert stored.call.outcome == "completed"


async def test_ddmm_means_the_next_such_date(center: Center):
    yesterday = in_days(center, -1)
    if (yesterday.month, yesterday.day) == (2, 29):  # pragma: no cover - the next one is four years on
        yesterday -= timedelta(days=1)
    record = await center.call(keys=[*submission("2", yesterday.strftime("%d%m") + "#", "1400", "rec:3", "1"), ""])
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "notification"
    assert stored.ticket.details["activity_date"] == yesterday.replace(year=yesterday.year + 1).isoformat()
    assert stored.ticket.details["start_time"] == "14:00"
    assert SAVED in record.spoken


async def test_bad_dates_are_refused_with_the_reason_then_the_caller_goes_back(center: Center):
    # a star inside, a hash inside (GET DATA stops there: "05"), all zeros
    record = await center.call(keys=["2", "1", "05*22026", "05#122026", "00000000"])
    heard = record.spoken
    assert heard.count(DATE_INVALID) == 3
    assert "Pengajuan dibatalkan." in heard
    stored = await center.stored(record.uniqueid)
    rejected = stored.data("input-rejected")
    assert [(r["keys"], r["problem"]) for r in rejected] == [
        ("05*22026", "keys"),
        ("05", "length"),
        ("00000000", "no-such-date"),
    ]
    assert stored.ticket.kind == "info"  # nothing was submitted
    assert "submit-cancelled" in stored.kinds()
    assert stored.call.outcome == "abandoned" and stored.call.outcome_step == "menu:main"


async def test_no_31_february_no_past_request_no_25_oclock_no_3_digit_time_then_accepted(center: Center):
    next_year = center.today().year + 1
    yesterday = in_days(center, -1)
    good = in_days(center, 3)
    keys = ["2", "1", f"3102{next_year}", keyed(yesterday), keyed(good), "930#", "2500", "1015", "1", "rec:3", "1", ""]
    record = await center.call(keys=keys)
    heard = record.spoken
    assert heard.count(DATE_INVALID) == 1 and heard.count(DATE_PAST) == 1
    assert heard.count(TIME_INVALID) == 2
    stored = await center.stored(record.uniqueid)
    problems = [(r["what"], r["problem"]) for r in stored.data("input-rejected")]
    assert problems == [("date", "no-such-date"), ("date", "past"), ("time", "length"), ("time", "no-such-time")]
    assert stored.ticket.details["activity_date"] == good.isoformat()
    assert stored.ticket.details["start_time"] == "10:15"


async def test_nothing_keyed_three_times_gives_up(center: Center):
    record = await center.call(keys=["2", "3", "", "", ""])
    assert record.spoken.count(NO_INPUT) == 3
    stored = await center.stored(record.uniqueid)
    assert [r["problem"] for r in stored.data("input-rejected")] == ["empty", "empty", "empty"]
    assert stored.ticket.kind == "info" and stored.ticket.priority == "normal"


async def test_a_notification_may_be_for_a_past_date_and_2_re_enters_after_the_read_back(center: Center):
    first, second = in_days(center, -2), in_days(center, 20)
    keys = ["2", "2", keyed(first), "0800", "2", keyed(second), "1930", "1", "rec:3", "1", ""]
    record = await center.call(keys=keys)
    heard = record.spoken
    assert when_text(first, time(8, 0), "Asia/Jakarta") in heard
    assert when_text(second, time(19, 30), "Asia/Jakarta") in heard
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.details["activity_date"] == second.isoformat()
    assert stored.ticket.details["start_time"] == "19:30"


async def test_silence_is_no_description_and_is_asked_again_once(center: Center):
    record = await center.call(keys=[*submission("1", keyed(in_days(center, 5)), "0900", "rec:0.4", "rec:3", "1"), ""])
    assert "Maaf, pesan Anda tidak terdengar. Silakan ulangi sekali lagi." in record.spoken
    stored = await center.stored(record.uniqueid)
    assert "record-rejected" in stored.kinds()
    first, second = stored.recordings
    assert stored.ticket.details["description"] == second.path and first.seconds < 1
    assert stored.ticket.status == "open"


async def test_two_silent_takes_save_the_request_without_a_description(center: Center):
    record = await center.call(keys=[*submission("1", keyed(in_days(center, 5)), "0900", "rec:0:s", "rec:0.2"), ""])
    assert "Keterangan suara tidak terekam. Pengajuan Anda tetap kami simpan tanpa keterangan." in record.spoken
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "request" and stored.ticket.status == "open"
    assert stored.ticket.details["description"] is None
    assert len(stored.data("record-rejected")) == 2


async def test_2_records_again_and_the_last_take_is_the_description(center: Center):
    record = await center.call(
        keys=[*submission("2", keyed(in_days(center, 5)), "0900", "rec:3", "2", "rec:4", "1"), ""]
    )
    stored = await center.stored(record.uniqueid)
    first, second = stored.recordings
    assert first.path.endswith("01-description.wav") and second.path.endswith("02-description.wav")
    assert stored.ticket.details["description"] == second.path
    assert "description-retake" in stored.kinds()


async def test_an_over_long_description_is_cut_at_two_minutes_and_kept(center: Center):
    record = await center.call(keys=[*submission("1", keyed(in_days(center, 5)), "0900", "rec:130", "1"), ""])
    assert CUT in record.spoken
    stored = await center.stored(record.uniqueid)
    (recording,) = stored.recordings
    assert 119 <= recording.seconds <= 120
    assert stored.ticket.details["description_truncated"] is True
    assert stored.ticket.status == "open"


async def test_hanging_up_while_recording_keeps_the_partial_recording_abandoned_with_message(center: Center):
    record = await center.call(keys=submission("1", keyed(in_days(center, 5)), "1300", "rec:3:h"))
    assert record.hangup_by == "caller"
    stored = await center.stored(record.uniqueid)
    assert stored.call.outcome == "abandoned" and stored.call.outcome_step == "record:description"
    ticket = stored.ticket
    assert (ticket.kind, ticket.status) == ("request", tickets.ABANDONED_WITH_MESSAGE)
    assert ticket.details["start_time"] == "13:00"
    (recording,) = stored.recordings
    assert 2.5 <= recording.seconds <= 3.5 and ticket.details["description"] == recording.path
    center.assert_8khz_wav(recording.path)


async def test_hanging_up_before_any_recording_leaves_an_abandoned_request(center: Center):
    record = await center.call(keys=["2", "1", keyed(in_days(center, 5)), "h"])
    stored = await center.stored(record.uniqueid)
    assert (stored.ticket.kind, stored.ticket.status) == ("request", tickets.ABANDONED)
    assert stored.ticket.details["activity_date"] is None
    assert stored.recordings == []


async def test_repeated_submissions_from_one_number_within_a_minute_are_both_kept(center: Center):
    keys = [*submission("2", keyed(in_days(center, 7)), "0800", "rec:2", "1"), ""]
    first = await center.stored((await center.call(keys=keys)).uniqueid)
    second = await center.stored((await center.call(keys=keys)).uniqueid)
    assert first.ticket.number != second.ticket.number
    assert second.ticket.details["repeat_of"] == first.ticket.number
    assert "repeat_of" not in first.ticket.details
    assert first.ticket.status == second.ticket.status == "open"


async def test_0_goes_back_to_the_main_menu(center: Center):
    record = await center.call(keys=["2", "0"])
    assert record.spoken.count(record.spoken[1]) == 2  # the main menu, again
    stored = await center.stored(record.uniqueid)
    assert stored.ticket.kind == "info"


# -- the sudden schedule change ----------------------------------------------------


async def test_schedule_change_without_ami_is_urgent_and_waits_for_the_desk(center: Center):
    alerts: AlertService = center.runtime.services.alerts
    with alerts.bus.subscribe() as events:
        record = await center.call(keys=[*submission("3", keyed(center.today()), "0700", "rec:4", "1"), ""])
        raised = await events.next(timeout=5)
    assert SAVED_URGENT in record.spoken
    stored = await center.stored(record.uniqueid)
    assert (stored.ticket.kind, stored.ticket.priority, stored.ticket.status) == ("schedule_change", "urgent", "open")
    assert raised.kind == "raised" and raised.ticket_number == stored.ticket.number
    (alert,) = await center.alerts()
    assert alert.id == raised.alert_id and alert.state == ALERT_PENDING and alert.attempts == 0
    assert alert.recording_path == stored.ticket.details["description"]
    # No AMI configured: nothing is claimed, the alert waits (and the scan raises nothing twice).
    assert await alerts.dispatch_due() == 0
    assert await alerts.scan_missing() == 0
    _, events_on_ticket, _ = await center.ticket(stored.ticket.number)
    assert [e.data for e in events_on_ticket if e.kind == "alert"] == [{"action": "raised"}]


async def test_schedule_change_calls_the_desk_which_hears_it_and_acknowledges(ami_center: Center, fake_ami: FakeAMI):
    center = ami_center
    alerts: AlertService = center.runtime.services.alerts
    assert await center.runtime.services.ami.wait_connected(5)
    with alerts.bus.subscribe() as events:
        record = await center.call(keys=[*submission("3", keyed(in_days(center, 1)), "0800", "rec:4", "1"), ""])
        kinds = [(await events.next(timeout=10)).kind for _ in range(3)]
    assert kinds == ["raised", "calling", "call-result"]
    stored = await center.stored(record.uniqueid)
    (originate,) = await fake_ami.wait_action("Originate")
    (alert,) = await center.alerts()
    assert originate["Channel"] == "Local/100@operator" and originate["Context"] == "callcenter-alert"
    assert originate["Exten"] == str(alert.id) and stored.ticket.number in originate["CallerID"]
    assert (alert.state, alert.attempts, alert.last_result) == (ALERT_CALLING, 1, "answered")

    # The desk's leg: Asterisk runs the alert flow with the alert's id.
    with alerts.bus.subscribe() as events:
        # Nothing during the intro, the summary and the recording; then 1.
        desk = await center.call(keys=["", "", "", "1"], script="alert", args=[str(alert.id)], caller="0286591000")
        acknowledged = await events.next(timeout=5)
    heard = desk.spoken
    assert heard[0] == "Perhatian. Ada laporan perubahan jadwal mendadak dari Call Center Protokol."
    assert any(t.startswith(f"Tiket nomor {' '.join(words(stored.ticket.number))}.") for t in heard)
    assert "Dari Dinas Komunikasi dan Informatika." in " ".join(heard)
    assert "01-description" in heard  # the caller's recorded description
    assert "Terima kasih, konfirmasi Anda telah kami catat." in heard
    assert acknowledged.kind == "acknowledged"
    (alert,) = await center.alerts()
    assert alert.state == ALERT_ACKNOWLEDGED and alert.acknowledged_at is not None
    _, events_on_ticket, _ = await center.ticket(stored.ticket.number)
    actions = [e.data["action"] for e in events_on_ticket if e.kind == "alert"]
    assert actions == ["raised", "call", "acknowledged"]
    # Acknowledged: never called again.
    assert await alerts.dispatch_due() == 0 and len(fake_ami.actions_named("Originate")) == 1


async def test_ami_down_the_alert_waits_then_is_placed_once_when_ami_returns(ami_center: Center, fake_ami: FakeAMI):
    center = ami_center
    ami = center.runtime.services.ami
    assert await ami.wait_connected(5)
    fake_ami.reject_connections = True
    await fake_ami.shutdown(restart=True)
    assert await ami.wait_state("connecting", 5)
    alerts: AlertService = center.runtime.services.alerts
    with alerts.bus.subscribe() as events:
        await center.call(keys=[*submission("3", keyed(in_days(center, 1)), "0800", "rec:3", "1"), ""])
        assert (await events.next(timeout=5)).kind == "raised"
        (alert,) = await center.alerts()
        assert (alert.state, alert.attempts) == (ALERT_PENDING, 0)
        fake_ami.reject_connections = False
        assert await ami.wait_connected(15)
        assert (await events.next(timeout=10)).kind == "calling"
        assert (await events.next(timeout=10)).kind == "call-result"
    assert len(fake_ami.actions_named("Originate")) == 1


async def test_no_answer_is_retried_and_the_desk_not_pressing_1_calls_again(ami_center: Center, fake_ami: FakeAMI):
    center = ami_center
    fake_ami.default_outcome = OriginateOutcome(response="Failure", reason=3)
    alerts: AlertService = center.runtime.services.alerts
    assert await center.runtime.services.ami.wait_connected(5)
    with alerts.bus.subscribe() as events:
        await center.call(keys=[*submission("3", keyed(in_days(center, 1)), "0800", "rec:3", "1"), ""])
        results = []
        while len(results) < 2:
            event = await events.next(timeout=10)
            if event.kind == "call-result":
                results.append(event.data["result"])
        assert results == ["no-answer", "no-answer"]
        fake_ami.default_outcome = OriginateOutcome()
        while (await events.next(timeout=10)).data.get("result") != "answered":
            pass
        (alert,) = await center.alerts()
        # The desk answers but hangs up without the 1: released, called again later.
        desk = await center.call(keys=["", "h"], script="alert", args=[str(alert.id)])
        assert desk.hangup_by == "caller"
        while (await events.next(timeout=10)).kind != "calling":
            pass
    (alert,) = await center.alerts()
    assert alert.attempts >= 4 and alert.state in (ALERT_CALLING, ALERT_PENDING)


async def test_hanging_up_while_describing_a_schedule_change_still_alerts(center: Center):
    alerts: AlertService = center.runtime.services.alerts
    with alerts.bus.subscribe() as events:
        record = await center.call(keys=submission("3", keyed(center.today()), "1000", "rec:2:h"))
        raised = await events.next(timeout=5)
    stored = await center.stored(record.uniqueid)
    assert (stored.ticket.kind, stored.ticket.status) == ("schedule_change", tickets.ABANDONED_WITH_MESSAGE)
    assert stored.ticket.priority == "urgent" and raised.ticket_number == stored.ticket.number
    (alert,) = await center.alerts()
    assert alert.recording_path == stored.recordings[0].path


async def test_the_scan_raises_an_alert_the_flow_could_not(center: Center):
    """The ticket reached the database without its alert (say from the spool
    after an outage): the scan raises it, once, even with two processes."""
    record = await center.call(keys=[*submission("3", keyed(center.today()), "1000", "rec:2", "1"), ""])
    stored = await center.stored(record.uniqueid)
    async with center.runtime.sessions.begin() as session:
        (alert,) = (await session.scalars(select(UrgentAlert))).all()
        await session.delete(alert)
    other = AlertService(center.settings, center.runtime.sessions, None)
    mine: AlertService = center.runtime.services.alerts
    counts = await asyncio.gather(mine.scan_missing(), other.scan_missing())
    assert sum(counts) >= 1
    (alert,) = await center.alerts()
    assert alert.ticket_id == stored.ticket.id


async def test_two_processes_claim_each_attempt_once(center: Center, fake_ami: FakeAMI):
    """Two alert services on one database, both with AMI up: one Originate."""
    from ivr.ami import AMIClient, AMIConfig

    record = await center.call(keys=[*submission("3", keyed(center.today()), "1000", "rec:2", "1"), ""])
    stored = await center.stored(record.uniqueid)
    clients = [
        AMIClient(AMIConfig(host=fake_ami.host, port=fake_ami.port, username="ivr", secret="ivrsecret"))
        for _ in range(2)
    ]
    services = [AlertService(center.settings, center.runtime.sessions, client) for client in clients]
    try:
        for client in clients:
            await client.start()
            assert await client.wait_connected(5)
        started = await asyncio.gather(*(s.dispatch_due() for s in services))
        assert sorted(started) == [0, 1]
        await fake_ami.wait_action("Originate")
        for service in services:
            await service.wait_idle(10)
    finally:
        for service in services:
            await service.close()
        for client in clients:
            await client.close()
    assert len(fake_ami.actions_named("Originate")) == 1
    (alert,) = await center.alerts()
    assert alert.ticket_id == stored.ticket.id and alert.attempts == 1


async def test_the_alert_flow_for_an_unknown_or_acknowledged_alert(center: Center):
    record = await center.call(keys=[""], script="alert", args=["999999"])
    assert record.spoken == ["Mohon maaf, laporan ini tidak ditemukan."]
    await center.call(keys=[*submission("3", keyed(center.today()), "1000", "rec:2", "1"), ""])
    (alert,) = await center.alerts()
    assert await center.runtime.services.alerts.acknowledge(alert.id, "PJSIP/201")
    again = await center.call(keys=[""], script="alert", args=[str(alert.id)])
    assert again.spoken == ["Laporan ini sudah dikonfirmasi. Terima kasih."]


async def test_a_caller_from_another_office_is_not_flagged_as_a_repeat(center: Center):
    keys = [*submission("2", keyed(in_days(center, 7)), "0800", "rec:2", "1"), ""]
    first = await center.stored((await center.call(keys=keys)).uniqueid)
    second = await center.stored((await center.call(keys=keys, caller=OTHER_OFFICE)).uniqueid)
    assert "repeat_of" not in second.ticket.details and first.ticket.number != second.ticket.number


def test_every_prompt_these_flows_name_is_in_the_catalog():
    from pathlib import Path

    from ivr.app import load_catalog

    catalog = load_catalog()
    flows = Path(__file__).resolve().parents[1] / "ivr" / "flows"
    prompt_id = re.compile(r'"((?:submit|track|alert|ticket|operator|input|menu|message)\.[a-z0-9_.-]+)"')
    named = set()
    for name in ("submit", "track", "alert", "operator", "messages", "tickets"):
        named |= set(prompt_id.findall((flows / f"{name}.py").read_text(encoding="utf-8")))
    assert len(named) > 30
    assert sorted(p for p in named if p not in catalog and not p.endswith(".")) == []


@pytest.mark.parametrize("ticket_field", ["kind", "status"])
def test_every_kind_and_status_has_its_prompt(ticket_field: str):
    from ivr.app import load_catalog

    catalog = load_catalog()
    values = tickets.KINDS if ticket_field == "kind" else tickets.STATUSES
    for value in [*values, "other"]:
        prompt = f"ticket.{ticket_field}.{value}"
        assert prompt in catalog, prompt
        assert re.fullmatch(r"[A-Z].*\.", catalog.text(prompt))


async def test_raising_an_alert_twice_gives_the_same_alert(center: Center):
    await center.call(keys=[*submission("3", keyed(center.today()), "1000", "rec:2", "1"), ""])
    (alert,) = await center.alerts()
    alerts: AlertService = center.runtime.services.alerts
    assert await alerts.raise_alert(alert.ticket_id) == alert.id
    assert len(await center.alerts()) == 1


async def test_a_server_shutdown_mid_submission_keeps_it_as_an_abandoned_urgent_change(center: Center):
    """Cut off otherwise than by a hang-up (here the server stopping with its
    grace period over): the ticket is the schedule change it was going to be,
    with its description, urgent, so the alert scan raises it; the timeline
    says the server stopped."""
    groups = iter(submission("3", keyed(center.today()), "1000", "rec:2"))
    stopping: asyncio.Task[None] | None = None

    async def caller(prompt: object) -> str:
        nonlocal stopping
        group = next(groups, None)
        if group is not None:
            return group
        # The review menu: the server shuts down and gives the call no grace.
        stopping = asyncio.create_task(center.runtime.agi.stop(grace=0))
        await asyncio.sleep(1)
        return "1"

    record = await place_call(
        "127.0.0.1", center.runtime.agi.bound_port, caller_id=REGISTERED, key_source=caller, pace=0.01
    )
    assert stopping is not None
    await stopping
    assert record.result != "OK"
    stored = await center.stored(record.uniqueid)
    ticket = stored.ticket
    assert (ticket.kind, ticket.status, ticket.priority) == (
        "schedule_change",
        tickets.ABANDONED_WITH_MESSAGE,
        "urgent",
    )
    assert ticket.details["description"] == stored.recordings[0].path
    assert stored.call.outcome == "failed" and stored.call.outcome_step.startswith("submit")
    assert stored.events[-1].kind == "error" and stored.events[-1].data == {"what": "shutdown"}
