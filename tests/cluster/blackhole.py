"""A TCP proxy on loopback that can be told to stop forwarding: a black-holed peer.

``BlackHole(target_port)`` forwards every connection to ``127.0.0.1:target_port``. After
:meth:`swallow`, it still accepts connections (the TCP handshake succeeds, as with a peer
behind a dead route or a hung process) but forwards nothing either way: bytes sent to it are read
and dropped and no answer ever comes. :meth:`restore` cuts the swallowed connections (as a
healed network would find them gone) and forwards new ones again.

Threads with blocking sockets, so it works whatever event loop (or none) the test runs.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support import free_port


class BlackHole:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.swallowing = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> BlackHole:
        listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        self._cut_all()

    def swallow(self) -> None:
        """From now on nothing is forwarded, on old and new connections alike."""
        self.swallowing.set()

    def restore(self) -> None:
        """Close every connection (their streams are broken) and forward new ones again."""
        self._cut_all()
        self.swallowing.clear()

    def _cut_all(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.add(client)
            if self.swallowing.is_set():
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks.add(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _drain(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if self.swallowing.is_set():
                    continue  # read and dropped: the sender waits for an answer forever
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
