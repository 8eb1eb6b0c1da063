"""Demo agenda for ``ivr seed --demo``: today and tomorrow for the three demo
leaders of a Central Java regency (Banjarnegara's places), with every status."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage.agenda_models import AgendaItem
from ivr.storage.models import Leader

T = dt.time

#: menu_key -> (day offset, start, end, activity, place, status, detail)
#: detail: representative for diwakilkan; (days ahead of the item, new start) for dipindahkan/ditunda.
DEMO_AGENDA: dict[str, list[tuple[int, dt.time, dt.time | None, str, str, str, Any]]] = {
    "1": [  # Bupati
        (
            0,
            T(7, 30),
            T(8, 30),
            "Apel Pagi dan Pembinaan ASN Lingkup Setda",
            "Halaman Kantor Bupati Banjarnegara",
            "selesai",
            None,
        ),
        (
            0,
            T(9, 0),
            T(11, 0),
            "Rapat Koordinasi Percepatan Penurunan Stunting Tahun 2026",
            "Pendopo Dipayudha Adigraha",
            "berlangsung",
            None,
        ),
        (
            0,
            T(13, 0),
            None,
            "Peresmian Jembatan Desa Sipedang, Kec. Banjarmangu",
            "Desa Sipedang, Kecamatan Banjarmangu",
            "dipindahkan",
            (1, T(14, 0)),
        ),
        (
            0,
            T(15, 30),
            T(17, 0),
            "Audiensi Pengurus TP PKK Kab. Banjarnegara",
            "Ruang Rapat Bupati",
            "diwakilkan",
            "Asisten Pemerintahan dan Kesejahteraan Rakyat Setda",
        ),
        (
            0,
            T(19, 30),
            T(22, 0),
            "Pengajian Akbar Peringatan Isra Mikraj",
            "Masjid Agung An-Nur Banjarnegara",
            "terjadwal",
            None,
        ),
        (
            1,
            T(8, 0),
            T(10, 0),
            "Rapat Paripurna DPRD Penyampaian Nota Keuangan RAPBD",
            "Gedung DPRD Kab. Banjarnegara",
            "terjadwal",
            None,
        ),
        (
            1,
            T(20, 0),
            T(1, 0),
            "Pagelaran Wayang Kulit Hari Jadi Kabupaten ke-194",
            "Alun-alun Banjarnegara",
            "terjadwal",
            None,
        ),
    ],
    "2": [  # Wakil Bupati
        (
            0,
            T(8, 0),
            T(10, 0),
            "Musrenbang RKPD Tingkat Kecamatan Wanadadi",
            "Aula Kecamatan Wanadadi",
            "terjadwal",
            None,
        ),
        (
            0,
            T(10, 30),
            None,
            "Kunjungan Kerja ke RSUD Hj. Anna Lasmanah",
            "RSUD Hj. Anna Lasmanah Banjarnegara",
            "ditunda",
            None,
        ),
        (
            0,
            T(14, 0),
            T(15, 30),
            "Zoom Meeting Evaluasi SPBE bersama Kementerian PANRB",
            "Command Center Diskominfo",
            "terjadwal",
            None,
        ),
        (1, T(7, 30), T(9, 0), "Senam Sehat dan Jalan Santai HUT Korpri", "Alun-alun Banjarnegara", "terjadwal", None),
        (
            1,
            T(9, 30),
            T(12, 0),
            "Monitoring Bantuan Rumah Tidak Layak Huni",
            "Kelurahan Parakancanggah",
            "terjadwal",
            None,
        ),
    ],
    "3": [  # Sekretaris Daerah
        (0, T(8, 0), T(9, 30), "Rapat Tim Anggaran Pemerintah Daerah (TAPD)", "Ruang Rapat Sekda", "terjadwal", None),
        (
            0,
            T(10, 0),
            T(12, 0),
            "Sosialisasi Layanan Call Center Protokol bagi OPD dan Camat",
            "Aula Setda Lantai 3",
            "terjadwal",
            None,
        ),
        (0, T(14, 0), None, "Penyerahan SK PPPK Formasi 2025", "Gedung Korpri Banjarnegara", "dibatalkan", None),
        (
            1,
            T(8, 30),
            T(11, 0),
            "Rapat Koordinasi Kesiapsiagaan Bencana Tanah Longsor bersama BPBD",
            "Ruang Rapat Sekda",
            "terjadwal",
            None,
        ),
    ],
}


async def seed_demo_agenda(session: AsyncSession, today: dt.date) -> int:
    """Add the demo agenda for ``today`` and the next day to the demo leaders
    (menu keys 1-3). A leader's day that already has items is left alone, so
    running it twice adds nothing. Returns the number of items added."""
    leaders = {row.menu_key: row.id for row in await session.scalars(select(Leader))}
    added = 0
    for key, entries in DEMO_AGENDA.items():
        leader_id = leaders.get(key)
        if leader_id is None:
            continue
        for offset in sorted({entry[0] for entry in entries}):
            day = today + dt.timedelta(days=offset)
            existing = await session.scalar(
                select(func.count())
                .select_from(AgendaItem)
                .where(AgendaItem.leader_id == leader_id, AgendaItem.date == day)
            )
            if existing:
                continue
            for entry_offset, start, end, activity, place, status, detail in entries:
                if entry_offset != offset:
                    continue
                item = AgendaItem(
                    leader_id=leader_id,
                    date=day,
                    start=start,
                    end=end,
                    activity=activity,
                    place=place,
                    status=status,
                    updated_by="seed",
                )
                if status == "diwakilkan":
                    item.representative = detail
                elif status in ("dipindahkan", "ditunda") and detail is not None:
                    ahead, new_start = detail
                    item.new_date, item.new_start = day + dt.timedelta(days=ahead), new_start
                session.add(item)
                added += 1
    await session.flush()
    return added
