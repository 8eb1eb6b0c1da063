"""``ivr serve``: the FastAGI server, the TTS pool, the spool and the web app in
one process, each started and stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ivr.agenda import build_agenda_services
from ivr.agi.server import FastAGIServer
from ivr.alerts import AlertService
from ivr.ami import AMIClient, AMIConfig
from ivr.audio import AudioLibrary
from ivr.callhandler import CallHandler
from ivr.config import Settings
from ivr.emergency.service import build_emergency
from ivr.flows import build_registry
from ivr.flows.actions import build_actions
from ivr.flows.main import greeting_text
from ivr.menus import DEFAULT_MENUS_FILE, load_menus
from ivr.metrics import Metrics
from ivr.office_hours import OfficeCalendar
from ivr.records import STORAGE_ERRORS, CallStore, Spool
from ivr.services import OverrideCache, Services
from ivr.speech.prompts import PromptCatalog, PromptLibrary
from ivr.speech.tts import SpeechEngine, SpeechUnavailable, Voice
from ivr.storage import migrations
from ivr.storage.database import WholeWork, create_engine, session_factory
from ivr.storage.directory import DirectoryCache
from ivr.storage.models import Office

log = logging.getLogger("ivr.app")

CATALOG_FILE = "prompts_id.toml"


@dataclass
class Runtime:
    """Everything ``ivr serve`` runs, for the web app and the tests to reach."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    speech: SpeechEngine
    prompts: PromptLibrary
    services: Services
    calls: CallHandler
    agi: FastAGIServer
    metrics: Metrics


def load_catalog() -> PromptCatalog:
    from ivr import speech

    return PromptCatalog.load(speech.__path__[0] + "/" + CATALOG_FILE)


def build_speech(settings: Settings) -> SpeechEngine:
    return SpeechEngine(
        cache_dir=settings.tts_cache_root,
        voice=Voice(name=settings.tts_voice, rate=settings.tts_rate, volume=settings.tts_volume),
        workers=settings.tts_workers,
        timeout=settings.tts_timeout,
    )


@contextlib.asynccontextmanager
async def running(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Runtime]:
    """Start every part; on exit stop them in reverse order, letting calls finish."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.recordings_root.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    if migrate:
        await migrations.upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    speech = build_speech(settings)
    catalog = load_catalog()
    prompts = PromptLibrary(catalog, settings.recordings_root, settings.language, speech)
    actions = build_actions()
    menus = load_menus(settings.menus_file or DEFAULT_MENUS_FILE, actions, catalog.ids)
    store = CallStore(sessions, batch_writes=True)
    spool = Spool(settings.data_dir / "spool", store)
    ami = (
        AMIClient(
            AMIConfig(
                host=settings.ami_host,
                port=settings.ami_port,
                username=settings.ami_username,
                secret=settings.ami_secret.get_secret_value(),
            )
        )
        if settings.ami_host
        else None
    )
    agenda = build_agenda_services(settings, sessions, speech)
    alerts = AlertService(settings, sessions, ami)
    emergency = build_emergency(settings, sessions, ami)
    services = Services(
        settings=settings,
        sessions=sessions,
        spool=spool,
        menus=menus,
        calendar=OfficeCalendar(settings.office_hours, settings.zone),
        override=OverrideCache(sessions),
        directory=DirectoryCache(sessions),
        reads=WholeWork(sessions, threads=2, name="call-reads"),
        ami=ami,
        agenda=agenda,
        alerts=alerts,
        emergency=emergency,
    )
    audio = AudioLibrary(settings, prompts, speech)
    calls = CallHandler(services, audio)
    agi = FastAGIServer(
        calls.routes(build_registry()),
        host=settings.agi_host,
        port=settings.agi_port,
        max_sessions=settings.agi_max_sessions,
        header_timeout=settings.agi_header_timeout,
        allowed_hosts=settings.agi_allowed_hosts,
    )
    metrics = Metrics(calls, agi, spool, speech, ami, services.events)
    runtime = Runtime(settings, engine, sessions, speech, prompts, services, calls, agi, metrics)
    try:
        await speech.start()
    except SpeechUnavailable as exc:
        # Calls still work on human recordings and whatever is cached; the
        # health endpoint reports TTS down and the engine retries on demand.
        log.error("TTS unavailable at start-up: %s", exc)
    if ami is not None:
        await ami.start()  # connects in the background; calls never wait for it
    await alerts.start()
    background = [asyncio.create_task(spool.run(), name="spool")]
    try:
        audio.prepare()
        report = await prompts.build()
        log.info("prompt catalog ready: %s; %d stable names", report, audio.publish_stable_names())
        background.append(asyncio.create_task(prerender_greetings(sessions, speech), name="greetings"))
        await agenda.start()
        await emergency.start()  # the roster in memory before the first call
        await agi.start()
        yield runtime
    finally:
        await agi.stop(settings.shutdown_grace_seconds)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await alerts.close()
        await emergency.close()  # before AMI: in-flight callbacks learn their outcome
        if ami is not None:
            await ami.close()
        await agenda.close()
        await store.close()
        services.reads.close()
        await speech.close()
        await engine.dispose()


async def prerender_greetings(sessions: async_sessionmaker[AsyncSession], speech: SpeechEngine) -> None:
    """Registered callers are greeted with their office's name: render those
    greetings before anyone calls, so nobody waits for synthesis."""
    try:
        async with sessions() as session:
            offices = list(await session.scalars(select(Office.name)))
    except STORAGE_ERRORS as exc:
        log.warning("could not pre-render greetings: %s", type(exc).__name__)
        return
    for office in offices:
        try:
            await speech.render(greeting_text(office))
        except (SpeechUnavailable, ValueError) as exc:
            log.warning("greeting for %s not pre-rendered: %s", office, exc)


#: A connection that has not sent a whole request this long after it opened
#: (or after its last answer) is closed: half-sent requests held open would
#: otherwise pile up until the process runs out of file descriptors, and the
#: FastAGI listener shares them. Streams (live events) are requests in
#: progress and are not affected.
HTTP_IDLE_SECONDS = 30.0


@contextlib.asynccontextmanager
async def serving_web(runtime: Runtime) -> AsyncIterator[str]:
    """The web app listening on ``http_host:http_port``; yields its base URL
    (with the port the system chose when ``http_port`` is 0)."""
    from ivr.web.app import create_web_app

    runner = web.AppRunner(create_web_app(runtime), access_log=None, keepalive_timeout=HTTP_IDLE_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, runtime.settings.http_host, runtime.settings.http_port)
        await site.start()
        host, port = runner.addresses[0][:2]
        base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        log.info("web app on %s", base_url)
        yield base_url
    finally:
        await runner.cleanup()


def raise_open_files_limit(settings: Settings) -> None:
    """Every call is a socket, and so is every web client: take the hard
    limit, as a telephony server must (the usual soft limit, 1024, is below
    the default number of calls at once)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit cannot be taken as the soft one for open files.
    if hard != resource.RLIM_INFINITY and hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d: %s", soft, exc)
    if soft != resource.RLIM_INFINITY and soft < settings.agi_max_sessions + 100:
        log.warning(
            "open-files limit %d is below IVR_AGI_MAX_SESSIONS (%d) plus room for the web app and the database",
            soft,
            settings.agi_max_sessions,
        )


async def serve(settings: Settings) -> None:
    raise_open_files_limit(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings, migrate=settings.migrate_on_start) as runtime, serving_web(runtime):
        await stop.wait()
        log.info("shutting down: no new calls, waiting for active ones")
        # The web app stays up while the calls drain: staff watch them end on
        # the board, and the health check still answers.
        await runtime.agi.stop(settings.shutdown_grace_seconds)
    log.info("stopped")
