"""A real TCP proxy that loses answers: the network failure a publisher must survive."""

from __future__ import annotations

import asyncio
import threading

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
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # nothing listens there: the client sees its connection closed
            client_w.close()
            return
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


class ProxyThread:
    """A :class:`DroppingProxy` served by its own event loop in a thread, for blocking tests."""

    def __init__(self, target_port: int, drops: int) -> None:
        self.proxy = DroppingProxy(target_port, drops)
        self.url = f"http://127.0.0.1:{self.proxy.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.__aenter__(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _shutdown(self) -> None:
        await self.proxy.__aexit__()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def drops(self) -> int:
        return self.proxy.drops
