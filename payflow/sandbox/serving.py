"""One way to run a WSGI app in the background: waitress on a daemon thread.

Waitress buffers each response into one write (no Nagle stall on keep-alive connections, which
boto3 and stripe-python both use) and serves requests from a thread pool.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import Any, Self


class PortInUseError(RuntimeError):
    """The port to serve on is taken."""


class BackgroundServer:
    """`app` served on host:port (0 picks a free port) until `stop()`."""

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        host: str,
        port: int,
        threads: int,
        name: str,
        port_hint: str,
        connection_limit: int = 100,
    ) -> None:
        from waitress.server import create_server

        # A busy pool queues requests, as it should under load: not worth a warning each time.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)

        try:
            self._server: Any = create_server(
                app,
                host=host,
                port=port,
                threads=threads,
                ident="PayFlow",
                channel_timeout=300,
                connection_limit=connection_limit,
            )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is in use: stop the program using it or set "
                    f"{port_hint} to a free port"
                ) from None
            raise
        self.host = host
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, then stop the worker threads."""
        from waitress import wasyncore

        server = self._server
        try:
            # Closing the sockets from the event loop's own thread avoids racing its poll().
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:
            # The loop's wake-up pipe is closed already (seen once at the end of a bench run):
            # the loop cannot be woken, so close everything from here.
            wasyncore.close_all(server._map)
        self._thread.join(timeout)
        server.task_dispatcher.shutdown(timeout=timeout)
