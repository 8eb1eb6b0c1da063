"""Main-menu option 1 end to end: a simulated Asterisk calls the running server
over FastAGI, the scripted caller presses keys, and the tests check what was
played (the read-back texts, in order, as 8 kHz mono 16-bit files) and what the
database holds afterwards (the timeline, the PIN lockout).

Each STREAM FILE that listens for keys takes one key group of the script: ""
means the caller lets that file play to the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from helpers import set_office_override
from sqlalchemy import select

from ivr.agenda import AgendaConfig, AgendaServices, build_agenda_services, store
from ivr.agenda.speech import day_readback, leader_menu_text
from ivr.flows import agenda as agenda_flow
from ivr.flows import main as main_flow
from ivr.simulator import CallRecord, PromptPlayed, place_call
from ivr.speech.normalize import normalize
from ivr.speech.tts import SpeechUnavailable
from ivr.storage import settings_store
from ivr.storage.agenda_models import AgendaItem, PinLockout
from ivr.storage.models import Call as CallRow
from ivr.storage.models import Caller, CallerNumber, Leader, Office, TicketEvent

WIB = ZoneInfo("Asia/Jakarta")
#: The agenda's "now": Monday 15 December 2025, 10:00 WIB.
NOW = dt.datetime(2025, 12, 15, 10, 0, tzinfo=WIB)
TODAY = NOW.date()
TOMORROW = TODAY + dt.timedelta(days=1)
OFFICER_NUMBER = "081234567890"
STRANGER_NUMBER = "081398765432"
PIN = "7395"
#: Cheap argon2 parameters for the test PIN: the check is the same, only faster.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T = dt.time


@pytest.fixture
async def agenda(runtime: Any) -> AsyncIterator[AgendaServices]:
    """The agenda services around the running server, option 1 routed to the
    agenda flow, the office open, and the demo leaders and one officer."""
    async with runtime.sessions.begin() as session:
        await settings_store.set_override(session, "open", by="test")
        office = Office(name="Dinas Komunikasi dan Informatika", kind="opd")
        session.add(office)
        await session.flush()
        officer = Caller(name="Budi Santoso", office_id=office.id, role="Kepala Bidang", pin_hash=FAST_HASHER.hash(PIN))
        officer.numbers = [CallerNumber(raw=OFFICER_NUMBER, e164="+6281234567890")]
        session.add(officer)
        for position, (title, name, key) in enumerate(
            [
                ("Bupati", "H. Ahmad Fauzi", "1"),
                ("Wakil Bupati", "Hj. Sri Wahyuni", "2"),
                ("Sekretaris Daerah", "Drs. Bambang Sutrisno", "3"),
            ]
        ):
            session.add(Leader(title=title, name=name, menu_key=key, position=position))
    await set_office_override(runtime, "open")
    services = build_agenda_services(
        runtime.settings,
        runtime.sessions,
        runtime.speech,
        config=AgendaConfig(prerender_debounce_ms=10),
        clock=lambda: NOW,
    )
    # Until Services gains its ``agenda`` field and the action table its entry.
    runtime.services.agenda = services
    saved_action = main_flow.ACTIONS["agenda"]
    main_flow.ACTIONS["agenda"] = agenda_flow.menu_action
    await services.start()
    try:
        yield services
    finally:
        main_flow.ACTIONS["agenda"] = saved_action
        await services.close()


async def _leader_id(runtime: Any, key: str = "1") -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(Leader.id).where(Leader.menu_key == key)))


async def _add(runtime: Any, agenda: AgendaServices, *items: store.ItemView) -> list[store.ItemView]:
    saved = []
    async with runtime.sessions.begin() as session:
        for item in items:
            saved.append(await store.create_item(session, item, by="test"))
    for item in saved:
        agenda.prerenderer.notify(item.id)
    await asyncio.wait_for(agenda.prerenderer.wait_idle(), 30)
    return saved


async def _texts(runtime: Any, leader_id: int, day: dt.date) -> tuple[str, ...]:
    async with runtime.sessions() as session:
        return day_readback(await store.load_day(session, leader_id, day)).texts


async def _call(runtime: Any, keys: list[str], caller_id: str = OFFICER_NUMBER) -> CallRecord:
    record = await place_call("127.0.0.1", runtime.agi.bound_port, caller_id=caller_id, keys=keys, timeout=60)
    # The server saves the call's record once the session ends: wait for it.
    if runtime.agi.active:
        await asyncio.wait(set(runtime.agi.active), timeout=10)
    return record


async def _events(runtime: Any, record: CallRecord) -> list[TicketEvent]:
    async with runtime.sessions() as session:
        call_id = await session.scalar(select(CallRow.id).where(CallRow.uniqueid == record.uniqueid))
        return list(
            await session.scalars(select(TicketEvent).where(TicketEvent.call_id == call_id).order_by(TicketEvent.seq))
        )


def _prompt_texts(events: list[TicketEvent]) -> list[str]:
    return [event.data["text"] for event in events if event.kind == "prompt"]


def _catalog(runtime: Any, prompt_id: str) -> str:
    return runtime.prompts.catalog.text(prompt_id)


def _in_order(heard: list[str], expected: list[str]) -> bool:
    """``expected`` appears in ``heard`` as a contiguous run."""
    return any(heard[i : i + len(expected)] == expected for i in range(len(heard) - len(expected) + 1))


def _bupati_today(leader_id: int) -> list[store.ItemView]:
    return [
        store.new_item(
            leader_id,
            TODAY,
            T(13, 0),
            "Peresmian Jembatan Desa Sipedang, Kec. Banjarmangu",
            place="Desa Sipedang",
            status="dipindahkan",
            new_date=TODAY + dt.timedelta(days=2),
            new_start=T(9, 0),
        ),
        store.new_item(
            leader_id,
            TODAY,
            T(8, 30),
            "Rapat Koordinasi Percepatan Penurunan Stunting",
            end=T(10, 0),
            place="Pendopo Dipayudha Adigraha",
            status="berlangsung",
        ),
        store.new_item(
            leader_id,
            TODAY,
            T(15, 30),
            "Audiensi Pengurus TP PKK",
            end=T(17, 0),
            place="Ruang Rapat Bupati",
            status="diwakilkan",
            representative="Asisten Pemerintahan dan Kesejahteraan Rakyat",
        ),
    ]


# -- a registered caller ------------------------------------------------------------------


async def test_registered_caller_hears_todays_items_in_time_order(runtime: Any, agenda: AgendaServices) -> None:
    bupati = await _leader_id(runtime)
    await _add(runtime, agenda, *_bupati_today(bupati))
    texts = await _texts(runtime, bupati, TODAY)
    assert len(texts) == 4
    for text in texts:  # pre-rendered before anyone called
        assert runtime.speech.cached(text) is not None

    # main menu 1, leader 1, listen to the intro and the three items, then 0 (back to the main menu)
    record = await _call(runtime, ["1", "1", "", "", "", "", "0"])

    assert record.audio_problems == []
    heard = record.spoken
    assert _in_order(heard, [*texts, _catalog(runtime, "agenda.options_today"), _catalog(runtime, "menu.main")])
    assert texts[0] == "Agenda Bupati pada hari Senin, lima belas Desember dua ribu dua puluh lima. Ada tiga kegiatan."
    assert texts[1].startswith("Pukul delapan lewat tiga puluh menit sampai dengan pukul sepuluh: Rapat Koordinasi")
    assert texts[1].endswith("Status: sedang berlangsung.")
    assert texts[2].endswith("Status: dipindahkan ke hari Rabu, tujuh belas Desember, pukul sembilan tepat.")
    assert texts[3].endswith("Status: diwakilkan oleh Asisten Pemerintahan dan Kesejahteraan Rakyat.")
    # The timeline has the read-back text that was played, in order.
    events = await _events(runtime, record)
    assert _in_order(_prompt_texts(events), list(texts))
    readbacks = [e.data for e in events if e.kind == "agenda-readback"]
    assert readbacks == [{"leader": bupati, "day": TODAY.isoformat(), "items": 3}], [
        (e.seq, e.kind, e.data) for e in events
    ]
    assert any(e.kind == "agenda-access" and e.data["by"] == "directory" for e in events), [
        (e.seq, e.kind, e.data) for e in events
    ]


async def test_an_empty_day_says_so_and_9_repeats(runtime: Any, agenda: AgendaServices) -> None:
    wakil = await _leader_id(runtime, "2")
    await asyncio.wait_for(agenda.prerenderer.wait_idle(), 30)
    empty = "Tidak ada agenda Wakil Bupati pada hari Senin, lima belas Desember dua ribu dua puluh lima."
    assert await _texts(runtime, wakil, TODAY) == (empty,)
    assert runtime.speech.cached(empty) is not None  # the start-up sweep rendered it

    record = await _call(runtime, ["1", "2", "", "9", "", "0"])

    assert record.audio_problems == []
    options = _catalog(runtime, "agenda.options_today")
    assert _in_order(record.spoken, [empty, options, empty, options])


async def test_barge_in_with_1_goes_to_tomorrow_at_once(runtime: Any, agenda: AgendaServices) -> None:
    bupati = await _leader_id(runtime)
    await _add(
        runtime,
        agenda,
        *_bupati_today(bupati),
        store.new_item(bupati, TOMORROW, T(8, 0), "Rapat Paripurna DPRD", end=T(10, 0), place="Gedung DPRD"),
        store.new_item(bupati, TOMORROW, T(20, 0), "Pagelaran Wayang Kulit", end=T(1, 0), place="Alun-alun"),
    )
    today = await _texts(runtime, bupati, TODAY)
    tomorrow = await _texts(runtime, bupati, TOMORROW)

    # 1 pressed while the first item plays: tomorrow starts at once.
    record = await _call(runtime, ["1", "1", "", "1", "", "", "", "0"])

    assert record.audio_problems == []
    heard = record.spoken
    assert today[2] not in heard and today[3] not in heard
    interrupted = [p for p in record.prompts if p.text == today[1]]
    assert len(interrupted) == 1 and interrupted[0].interrupted
    assert _in_order(heard, [today[0], today[1], *tomorrow, _catalog(runtime, "agenda.options_tomorrow")])
    assert tomorrow[0] == (
        "Agenda Bupati pada hari Selasa, enam belas Desember dua ribu dua puluh lima. Ada dua kegiatan."
    )
    assert tomorrow[2].startswith("Pukul dua puluh sampai dengan pukul satu keesokan harinya: Pagelaran Wayang Kulit")
    events = await _events(runtime, record)
    days = [e.data["day"] for e in events if e.kind == "agenda-readback"]
    assert days == [TODAY.isoformat(), TOMORROW.isoformat()]


# -- access -------------------------------------------------------------------------------


async def test_unknown_caller_is_refused_then_gets_in_with_the_right_pin(runtime: Any, agenda: AgendaServices) -> None:
    bupati = await _leader_id(runtime)
    await _add(runtime, agenda, *_bupati_today(bupati))
    texts = await _texts(runtime, bupati, TODAY)

    # Refused: the caller does not take the PIN offer.
    refused = await _call(runtime, ["1", "0", ""], caller_id=STRANGER_NUMBER)
    assert _in_order(
        refused.spoken,
        [
            _catalog(runtime, "agenda.registered_only"),
            _catalog(runtime, "agenda.pin_offer"),
            _catalog(runtime, "menu.main"),
        ],
    )
    assert not any(text in refused.spoken for text in texts)

    # Then with the officer's registered number and PIN.
    record = await _call(
        runtime, ["1", "1", OFFICER_NUMBER + "#", PIN + "#", "1", "", "", "", "", "0"], caller_id=STRANGER_NUMBER
    )
    assert record.audio_problems == [], record.render()
    # (the leader menu's audio is shared with its catalog fallback: compare as spoken)
    heard = [normalize(text) for text in record.spoken]
    assert _in_order(heard, [normalize(_catalog(runtime, "agenda.pin_ok")), leader_menu_text_for_demo(), *texts])
    events = await _events(runtime, record)
    pins = [e.data for e in events if e.kind == "pin"]
    assert [p["result"] for p in pins] == ["ok"]
    # Never the PIN itself, anywhere on the timeline.
    assert PIN not in json.dumps([e.data for e in events])
    masked = [e.data for e in events if e.kind == "dtmf" and e.data.get("purpose") == "pin"]
    assert masked and all(set(d["digits"]) <= {"*"} for d in masked)
    async with runtime.sessions() as session:
        call = await session.scalar(select(CallRow).where(CallRow.uniqueid == record.uniqueid))
        officer = await session.scalar(select(Caller.id).where(Caller.name == "Budi Santoso"))
    assert call.caller_id == officer  # the ticket says who logged in


def leader_menu_text_for_demo() -> str:
    return leader_menu_text(
        [
            store.LeaderInfo(0, "Bupati", "", "1"),
            store.LeaderInfo(0, "Wakil Bupati", "", "2"),
            store.LeaderInfo(0, "Sekretaris Daerah", "", "3"),
        ]
    )


async def test_three_wrong_pins_lock_the_number_out(runtime: Any, agenda: AgendaServices) -> None:
    bupati = await _leader_id(runtime)
    await _add(runtime, agenda, *_bupati_today(bupati))
    texts = await _texts(runtime, bupati, TODAY)
    wrong = ["1", "1"]
    for guess in ("0000", "5555", "2468"):
        wrong += [OFFICER_NUMBER + "#", guess + "#"]

    record = await _call(runtime, wrong, caller_id=STRANGER_NUMBER)

    heard = record.spoken
    assert heard.count(_catalog(runtime, "agenda.pin_wrong")) == 3
    assert _in_order(heard, [_catalog(runtime, "agenda.pin_wrong"), _catalog(runtime, "agenda.pin_locked")])
    assert not any(text in heard for text in texts)
    events = await _events(runtime, record)
    assert [e.data["result"] for e in events if e.kind == "pin"] == ["wrong", "wrong", "locked"]
    for guess in ("0000", "5555", "2468"):
        assert guess not in json.dumps([e.data for e in events])
    async with runtime.sessions() as session:
        lockout = await session.scalar(select(PinLockout).where(PinLockout.caller_key == "+6281398765432"))
    assert lockout is not None and lockout.locked_until is not None
    assert lockout.locked_until == NOW + dt.timedelta(minutes=15)  # the agenda's clock, the configured time

    # The next call from that number is refused without a PIN prompt, even with the right PIN ready.
    again = await _call(runtime, ["1", "1", OFFICER_NUMBER + "#", PIN + "#"], caller_id=STRANGER_NUMBER)
    assert _in_order(
        again.spoken, [_catalog(runtime, "agenda.registered_only"), _catalog(runtime, "agenda.pin_locked")]
    )
    assert _catalog(runtime, "agenda.pin_offer") not in again.spoken
    assert not any(text in again.spoken for text in texts)
    # A registered caller is not affected by someone else's lockout.
    known = await _call(runtime, ["1", "1", "", "", "", "", "0"])
    assert _in_order(known.spoken, list(texts))


# -- changes and failures -------------------------------------------------------------------


async def test_status_change_through_the_api_is_in_the_next_call(
    runtime: Any, agenda: AgendaServices, aiohttp_client: Any
) -> None:
    from test_agenda_api import agenda_app

    from ivr.storage.tokens import create_token

    bupati = await _leader_id(runtime)
    first, *_ = await _add(runtime, agenda, *_bupati_today(bupati))
    client = await aiohttp_client(agenda_app(runtime, agenda))
    async with runtime.sessions.begin() as session:
        token = await create_token(session, "staff", "test-staff")

    response = await client.patch(
        f"/api/agenda/{first.id}",
        json={"status": "dibatalkan", "note": "Menunggu jadwal baru dari Kementerian"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200, await response.text()
    spoken = (await response.json())["spoken"]
    assert spoken.endswith("Status: dibatalkan. Catatan: Menunggu jadwal baru dari Kementerian.")
    # Re-rendered in the background at once: cached before anyone calls.
    await asyncio.wait_for(agenda.prerenderer.wait_idle(), 30)
    texts = await _texts(runtime, bupati, TODAY)
    assert spoken in texts
    for text in texts:
        assert runtime.speech.cached(text) is not None
    # The moved-to day no longer mentions it.
    moved_day = await _texts(runtime, bupati, TODAY + dt.timedelta(days=2))
    assert not any("Peresmian" in text for text in moved_day)

    record = await _call(runtime, ["1", "1", "", "", "", "", "0"])
    assert _in_order(record.spoken, list(texts))
    assert record.audio_problems == []


async def test_tts_failing_plays_the_apology_and_the_call_goes_on(
    runtime: Any, agenda: AgendaServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    bupati = await _leader_id(runtime)
    await asyncio.wait_for(agenda.prerenderer.wait_idle(), 30)

    async def broken(text: str, timeout: float | None = None) -> Any:
        raise SpeechUnavailable("TTS workers unavailable (test)")

    monkeypatch.setattr(runtime.speech, "render", broken)
    # Items nobody has rendered yet (unique text), added behind the prerenderer's back.
    async with runtime.sessions.begin() as session:
        session.add(
            AgendaItem(
                leader_id=bupati,
                date=TODAY,
                start=T(9, 0),
                activity=f"Rapat Tanpa Audio {NOW.timestamp()}",
                place="Pendopo",
                status="terjadwal",
            )
        )

    # 1 agenda, 1 Bupati: the read-back cannot be synthesized; the main menu follows, 0 for the operator.
    record = await _call(runtime, ["1", "1", "0"])

    heard = record.spoken
    assert _in_order(heard, [_catalog(runtime, "agenda.unavailable"), _catalog(runtime, "menu.main")])
    assert not any("Rapat Tanpa Audio" in text for text in heard)
    assert record.dial_attempts  # the call went on to the operator
    assert record.audio_problems == []
    events = await _events(runtime, record)
    assert [e.data["ready"] for e in events if e.kind == "agenda-readback"] == [False]
    assert not [p for p in record.prompts if isinstance(p, PromptPlayed) and not p.found]
