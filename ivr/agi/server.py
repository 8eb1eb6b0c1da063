"""The FastAGI TCP server: accepts Asterisk's connections and routes them.

Asterisk connects once per ``AGI(agi://host:4573/<script>?<options>,<args>)``.
We read the environment, pick the handler registered for ``<script>`` and give
it a ``Session``. A script we do not know gets ``IVR_RESULT=NOROUTE`` so the
dialplan can branch on it (``AGISTATUS`` says SUCCESS even then, res_agi.c
4730-4767).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping

from ivr import channel_vars
from ivr.agi import protocol
from ivr.agi.session import BadEnvironment, Session, read_environment
from ivr.logs import call_context

log = logging.getLogger("ivr.agi.server")

Handler = Callable[[Session], Awaitable[None]]


class FastAGIServer:
    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        host: str,
        port: int,
        max_sessions: int,
        header_timeout: float = 5.0,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.max_sessions = max_sessions
        self.allowed = [ipaddress.ip_network(h, strict=False) for h in allowed_hosts]
        self.active: set[asyncio.Task[None]] = set()
        self.rejected_busy = 0
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self.host,
            self.port,
            limit=protocol.MAX_COMMAND_BYTES * 32,
            backlog=1024,
            reuse_address=True,
        )
        log.info("FastAGI listening on %s:%s, scripts: %s", self.host, self.bound_port, ", ".join(sorted(self.routes)))

    async def stop(self, grace: float) -> None:
        """Stop accepting, let active calls finish for ``grace`` seconds, then
        cancel what is left (their ``finally`` blocks still write the records)."""
        if self._server is not None:
            self._server.close()
        if self.active:
            log.info("waiting up to %.0fs for %d active call(s)", grace, len(self.active))
            _, pending = await asyncio.wait(set(self.active), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    def _peer_allowed(self, writer: asyncio.StreamWriter) -> bool:
        if not self.allowed:
            return True
        peer = writer.get_extra_info("peername")
        if not peer:
            return False
        address = ipaddress.ip_address(peer[0])
        return any(address in network for network in self.allowed)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if not self._peer_allowed(writer):
            log.warning("refused FastAGI connection from %s", writer.get_extra_info("peername"))
            writer.close()
            return
        if len(self.active) >= self.max_sessions:
            # A line starting with "failure" ends the AGI with AGISTATUS=FAILURE
            # (res_agi.c:4441-4445) so the dialplan goes to its failure exit.
            self.rejected_busy += 1
            log.warning("too many active calls (%d): refusing a session", len(self.active))
            writer.write(b"failure\n")
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.active.add(task)
        try:
            await self._serve(reader, writer)
        except Exception:
            # Handlers end their own calls; this is the last line of defence so
            # that a bug is logged with its call and the server goes on.
            log.exception("FastAGI session failed")
        except asyncio.CancelledError:
            # Cancelled by stop() after the grace period; the handler's finally
            # has closed the record. This is the task's root: ending quietly
            # here keeps asyncio's stream callback (which calls
            # task.exception() on the finished task) from logging an error.
            log.info("session cancelled at shutdown")
        finally:
            self.active.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            environment = await read_environment(reader, self.header_timeout)
        except (BadEnvironment, TimeoutError, ConnectionError, OSError) as exc:
            log.info("dropped FastAGI peer %s: %s", writer.get_extra_info("peername"), str(exc) or type(exc).__name__)
            writer.close()
            return
        session = Session(reader, writer, environment)
        with call_context(environment.uniqueid):
            handler = self.routes.get(environment.script)
            try:
                if handler is None:
                    log.warning("no flow for script %r", environment.script)
                    await self._no_route(session)
                else:
                    await handler(session)
            finally:
                await session.finish()

    async def _no_route(self, session: Session) -> None:
        line = protocol.encode_command("SET VARIABLE", channel_vars.RESULT, channel_vars.RESULT_NOROUTE)
        try:
            await session.command(line, timeout=5)
        except Exception as exc:  # the peer may be gone or not Asterisk at all
            log.info("could not report NOROUTE: %s", exc)
