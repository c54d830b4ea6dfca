"""A real TCP proxy that loses answers: the network failure a publisher must survive."""

from __future__ import annotations

import asyncio

from tests.support import free_port


class DroppingProxy:
    """A real TCP proxy that forwards requests but cuts the first ``drops`` responses."""

    def __init__(self, target_port: int, drops: int) -> None:
        self.target_port = target_port
        self.drops = drops
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> DroppingProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        drop = self.drops > 0
        if drop:
            self.drops -= 1

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            try:
                while data := await src.read(65536):
                    if cut:
                        break  # the request reached the server; the answer is lost
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(
            pipe(client_r, up_w, False), pipe(up_r, client_w, drop), return_exceptions=True
        )
