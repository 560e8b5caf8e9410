"""A TCP proxy in front of each validator's p2p port, to cut one validator off from the others
at the socket level (issue 13, fault tests) and let it back in.

The validators listen on ports nobody is told about; each announces its proxy's address
(`--p2p.announce`) and names the others' proxies as boot nodes, so every connection between two
validators passes a proxy: the one in front of the validator that was dialled. A connection
to validator B's proxy may come from any validator; the proxy tells which one by asking the
kernel which process holds the connecting socket (psutil, by the client's port), so cutting A
closes the connections A dialled as well as those dialled to A, and refuses A's new ones at
every proxy until it is healed.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable

import psutil

PUMP_BYTES = 64 * 1024


class Switchboard:
    """One proxy per validator: `ports[i]` forwards to `upstream[i]`. `pid_of(i)` is validator
    i's process id (None while it is down), read at every accepted connection (restarts are
    followed)."""

    def __init__(self, upstream: list[int], pid_of: Callable[[int], int | None]) -> None:
        self.upstream, self.pid_of = upstream, pid_of
        self.accepted: collections.Counter[tuple[int, int]] = collections.Counter()  # (from, to)
        self.refused: collections.Counter[tuple[int | None, int]] = collections.Counter()
        self._cut: set[int] = set()
        self._links: set[tuple[int, int, asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="switchboard")
        self._thread.start()
        self._servers = [self._call(asyncio.start_server(self._handler(i), "127.0.0.1", 0))
                         for i in range(len(upstream))]
        self.ports = [s.sockets[0].getsockname()[1] for s in self._servers]

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def cut(self, index: int) -> None:
        """Close every connection validator `index` has to the others, and refuse new ones."""
        async def cut() -> None:
            self._cut.add(index)
            for link in [link for link in self._links if index in link[:2]]:
                for writer in link[2:]:
                    writer.transport.abort()
        self._call(cut())

    def heal(self, index: int) -> None:
        async def heal() -> None:
            self._cut.discard(index)
        self._call(heal())

    def close(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for link in list(self._links):
                for writer in link[2:]:
                    writer.transport.abort()
        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _node_of(self, client_port: int, proxy_port: int) -> int | None:
        """Which validator holds the socket 127.0.0.1:client_port connected to our proxy_port."""
        for i in range(len(self.upstream)):
            pid = self.pid_of(i)
            if pid is None:
                continue
            try:
                connections = psutil.Process(pid).net_connections("tcp4")
            except psutil.Error:
                continue
            for c in connections:
                if c.laddr and c.laddr.port == client_port and c.raddr and c.raddr.port == proxy_port:
                    return i
        return None

    def _handler(self, to: int):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            client_port = writer.get_extra_info("peername")[1]
            frm = await self._loop.run_in_executor(None, self._node_of, client_port, self.ports[to])
            if frm is None or frm in self._cut or to in self._cut:
                self.refused[(frm, to)] += 1
                writer.transport.abort()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream[to])
            except OSError:
                self.refused[(frm, to)] += 1
                writer.transport.abort()
                return
            self.accepted[(frm, to)] += 1
            link = (frm, to, writer, up_writer)
            self._links.add(link)
            try:
                await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
            finally:
                self._links.discard(link)
                writer.transport.abort()
                up_writer.transport.abort()
        return handle


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side ends; then end both (a half-closed libp2p connection is no use)."""
    try:
        while data := await reader.read(PUMP_BYTES):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        writer.transport.abort()
