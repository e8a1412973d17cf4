"""One way to run a WSGI app in the background: waitress on a daemon thread.

Waitress buffers each response into one write (no Nagle stall on keep-alive connections, which
boto3 and stripe-python both use) and serves requests from a thread pool.
"""

from __future__ import annotations

import errno
import functools
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
        date_once_a_second()

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


def date_once_a_second() -> None:
    """waitress formats the Date header of every answer (`time.gmtime` and a format: 2 % of the
    embedded AWS's CPU in a chaos run); the header changes once a second, so it is formatted
    once a second (idempotent)."""
    from waitress import task

    if getattr(task.build_http_date, "by_second", None) is not None:
        return
    format_date = task.build_http_date

    @functools.lru_cache(maxsize=2)
    def by_second(second: int) -> str:
        return str(format_date(second))

    def build_http_date(when: float) -> str:
        # gmtime drops the fraction of a second, as int() does for a time after 1970.
        return by_second(int(when))

    build_http_date.by_second = by_second  # type: ignore[attr-defined]
    task.build_http_date = build_http_date  # type: ignore[assignment]
