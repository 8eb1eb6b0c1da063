"""The ``ivr`` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from ivr.config import Settings, load_settings, unknown_variables
from ivr.logs import setup_logging
from ivr.storage.tokens import ROLES
from ivr.storage.users import AccountError

log = logging.getLogger("ivr.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Call Center Protokol IVR backend")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the FastAGI server, the TTS pool and the web app")

    seed = commands.add_parser("seed", help="load data")
    seed.add_argument("--demo", action="store_true", required=True, help="realistic demo offices, officers, leaders")

    call = commands.add_parser("call", help="place a simulated call into a running server over FastAGI")
    call.add_argument("--host", default=None)
    call.add_argument("--port", type=int, default=None)
    call.add_argument("--script", default="main", help="FastAGI script: main, emergency, ...")
    call.add_argument("--caller", default="081234567890", help="caller ID number ('' for none)")
    call.add_argument("--name", default="", help="caller ID name")
    call.add_argument("--withheld", action="store_true", help="caller ID withheld")
    call.add_argument(
        "--keys",
        default=None,
        help="comma-separated key groups, one per input (e.g. 1,1,9; '' = no key; h = hang up); "
        "without it, keys are read interactively",
    )
    call.add_argument(
        "--dial",
        action="append",
        default=[],
        metavar="TARGET=STATUS",
        help="scripted Dial outcome, e.g. Local/100@operator=NOANSWER",
    )

    prompts = commands.add_parser("prompts", help="the prompt catalog")
    prompts.add_argument("action", choices=["build"])

    db = commands.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade"])

    users = commands.add_parser("users", help="staff accounts of the web app").add_subparsers(
        dest="action", required=True
    )
    create_user = users.add_parser(
        "create", help="add an account; the password is asked for (or read from standard input when piped)"
    )
    create_user.add_argument("--username", required=True)
    create_user.add_argument("--role", required=True, choices=ROLES)
    create_user.add_argument("--full-name", default="")
    users.add_parser("list", help="every account with its role and state")
    for action, what in (
        ("disable", "refuse its sign-in and end its sessions"),
        ("enable", "allow its sign-in"),
        ("set-password", "a new password, asked for like create's; ends its sessions and lifts its lockout"),
        ("unlock", "lift the lockout after failed sign-ins (a client address's lock runs out by itself)"),
    ):
        users.add_parser(action, help=what).add_argument("username")

    tokens = commands.add_parser("tokens", help="API tokens").add_subparsers(dest="action", required=True)
    create_token = tokens.add_parser("create", help="prints only the new token (shown once)")
    create_token.add_argument("--role", required=True, choices=ROLES)
    create_token.add_argument("--label", default="")
    tokens.add_parser("list", help="every token's id, role, label and use (never the token)")
    tokens.add_parser("revoke", help="the token stops working at once").add_argument("id", type=int)

    callers = commands.add_parser("callers", help="the caller directory")
    callers.add_argument("action", choices=["import"])
    callers.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.log_level, settings.log_json)
    except (ValidationError, SettingsError, ValueError, OSError) as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    for name in unknown_variables():
        log.warning("ignoring %s: no such setting (a typo?)", name)
    handler = COMMANDS[args.command]
    try:
        return asyncio.run(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2


class StartupError(Exception):
    """A problem a person must fix before the server can start."""


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from ivr.app import serve
    from ivr.menus import MenuError

    log.info("starting with settings %s", settings.masked())
    try:
        await serve(settings)
    except (MenuError, ArgumentError) as exc:
        raise StartupError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise StartupError(f"database unavailable: {type(exc).__name__}: {exc.args[0] if exc.args else ''}") from exc
    except OSError as exc:
        raise StartupError(f"{exc.strerror or exc} (is another server on the same port?)") from exc
    return 0


async def _with_database(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    from ivr.storage import migrations
    from ivr.storage.database import create_engine, session_factory

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrations.upgrade(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    try:
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


async def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.seed import DEMO_ADMIN, seed_demo, seed_demo_admin

    async def work(sessions: Any) -> int:
        summary = await seed_demo(sessions, settings)
        print(summary)
        password = await seed_demo_admin(sessions)
        if password is not None:
            # Straight to the terminal, once: never through logging (log files, journald).
            print(f"web app sign-in: user {DEMO_ADMIN}, password {password} (shown only now; write it down)")
        return 0

    return await _with_database(settings, work)


async def _db(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.storage import migrations

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrations.upgrade(settings.effective_database_url)
    print("database is at the latest revision")
    return 0


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


async def _tokens(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.storage import tokens

    async def work(sessions: Any) -> int:
        async with sessions.begin() as session:
            if args.action == "create":
                print(await tokens.create_token(session, args.role, args.label))
            elif args.action == "list":
                rows = [
                    (str(t.id), t.role, t.label, _when(t.created_at), _when(t.last_used_at), _when(t.revoked_at))
                    for t in await tokens.list_tokens(session)
                ]
                print(_table(("id", "role", "label", "created", "last used", "revoked"), rows))
            elif not await tokens.revoke_token(session, args.id):
                print(f"no token {args.id}, or it is already revoked", file=sys.stderr)
                return 1
            else:
                print(f"token {args.id} revoked")
        return 0

    return await _with_database(settings, work)


def _read_new_password() -> str:
    """Asked for twice on a terminal (never an argument: it would stay in the
    shell's history and in ``ps``); one line from standard input when piped."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise AccountError("the passwords differ")
    return password


async def _users(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.storage.users import check_new_password

    try:
        password = ""
        if args.action in ("create", "set-password"):
            password = _read_new_password()
            check_new_password(password)
        return await _with_database(settings, lambda sessions: _manage_users(sessions, args, password))
    except AccountError as exc:
        print(exc, file=sys.stderr)
        return 2


async def _manage_users(sessions: Any, args: argparse.Namespace, password: str) -> int:
    from ivr.storage import users
    from ivr.storage.web_sessions import clear_failures, user_key

    username = users.normalize_username(getattr(args, "username", ""))
    async with sessions.begin() as session:
        if args.action == "create":
            await users.create_user(session, username, password, args.role, args.full_name)
            print(f"user {username} created")
        elif args.action == "list":
            rows = [
                (u.username, u.role, "active" if u.active else "disabled", u.full_name, _when(u.created_at))
                for u in await users.list_users(session)
            ]
            print(_table(("username", "role", "state", "full name", "created"), rows))
        elif args.action == "set-password":
            await users.set_password(session, username, password)
            await clear_failures(session, user_key(username))
            print(f"password of {username} changed; its sessions ended")
        elif args.action == "unlock":
            await clear_failures(session, user_key(username))
            print(f"user {username} unlocked")
        else:
            await users.set_active(session, username, args.action == "enable")
            print(f"user {username} {args.action}d")
    return 0


async def _callers(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.directory_import import CallerImportError, import_callers_file

    async def work(sessions: Any) -> int:
        try:
            report = await import_callers_file(sessions, args.file, progress=True)
        except CallerImportError as exc:
            print(f"import refused: {exc}", file=sys.stderr)
            return 2
        print(report.render())
        return 0 if not report.rejected else 1

    return await _with_database(settings, work)


async def _prompts(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ivr.app import build_speech, load_catalog
    from ivr.speech.prompts import PromptLibrary

    engine = build_speech(settings)
    await engine.start()
    try:
        library = PromptLibrary(load_catalog(), settings.recordings_root, settings.language, engine)
        # disable=None: a bar on a terminal, nothing in a log file.
        with tqdm(total=len(library.catalog.ids), unit="prompt", desc="prompts", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            report = await library.build(progress=progress)
        print(
            f"prompts: {report.total} ready in {report.seconds:.1f} s ({report.rendered} synthesized, "
            f"{report.cached} from the cache, {report.recorded} with a human recording)"
        )
        for prompt_id, error in report.failed.items():
            # Not fatal: `ivr serve` builds the catalog again at start-up.
            print(f"prompt {prompt_id} not rendered: {error}", file=sys.stderr)
        return 0
    finally:
        await engine.close()


async def _call(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.simulator import parse_dial_outcome, parse_key_group, place_call, stdin_key_source

    keys = args.keys.split(",") if args.keys is not None else None
    outcomes: dict[str, str] = {}
    try:
        for item in args.dial:
            target, equals, spec = item.partition("=")
            if not equals or not target:
                raise ValueError(f"--dial {item!r}: use TARGET=STATUS, e.g. Local/100@operator=NOANSWER")
            parse_dial_outcome(target, spec)
            outcomes[target] = spec
        for group in keys or ():
            parse_key_group(group)
    except ValueError as exc:
        print(f"ivr call: {exc}", file=sys.stderr)
        return 2
    key_source = stdin_key_source() if keys is None else None
    host, port = args.host or settings.agi_host, args.port or settings.agi_port
    try:
        record = await place_call(
            host,
            port,
            script=args.script,
            caller_id=args.caller or None,
            caller_name=args.name or None,
            presentation=35 if args.withheld else None,
            keys=keys,
            dial_outcomes=outcomes,
            key_source=key_source,
            timeout=600,
        )
    except ConnectionRefusedError:
        print(f"no FastAGI server on {host}:{port} (is `ivr serve` running? --port picks another)", file=sys.stderr)
        return 1
    print(record.render())
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[int]]] = {
    "serve": _serve,
    "seed": _seed,
    "call": _call,
    "prompts": _prompts,
    "db": _db,
    "users": _users,
    "tokens": _tokens,
    "callers": _callers,
}
