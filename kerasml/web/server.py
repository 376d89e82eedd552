"""`kerasml try`: check the model and the port, then serve the page with uvicorn and open it."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import webbrowser
from pathlib import Path
from typing import Callable

from kerasml.errors import KerasmlError


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or one clear error (port in use, unknown host) before anything starts."""
    if not 0 <= port <= 65535:
        raise KerasmlError(f"--port {port} is not a port; pick one from 1 to 65535 (0: any free port)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror:
        raise KerasmlError(f"--host {host} is not an address of this machine; use 127.0.0.1") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise KerasmlError(f"{host}:{port} is in use (another server?); pick another with --port, "
                               "or --port 0 for any free one") from None
        raise KerasmlError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                           "pick another --port or --host") from None


def page_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:      # 0.0.0.0 or ::: this machine is reachable as loopback
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def make_server(model_path: Path, host: str = "127.0.0.1", port: int = 8000):
    """(uvicorn.Server, listening socket, page URL): every check done, nothing served yet."""
    try:
        import uvicorn

        from kerasml.web.app import LOOPBACK_NAMES, create_app
    except ImportError as exc:
        raise KerasmlError(f"kerasml try needs {exc.name or 'fastapi and uvicorn'}, which is not installed; "
                           "run `pip install fastapi uvicorn` (or reinstall kerasml)") from None
    from kerasml.web.classifier import TryModel

    model = TryModel(Path(model_path))
    sock = listen(host, port)
    loopback = ipaddress.ip_address(sock.getsockname()[0]).is_loopback
    app = create_app(model, allowed_hosts=LOOPBACK_NAMES if loopback else None)
    # A browser tab holding a connection open must not keep Ctrl-C from stopping the server.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3))
    return server, sock, page_url(sock)


def serve(model_path: Path, host: str, port: int, open_browser: bool, say: Callable[[str], None]) -> None:
    """Serve until Ctrl-C (a normal stop, exit code 0); the browser opens once the server accepts connections."""
    server, sock, url = make_server(model_path, host, port)
    if not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        say(f"note: listening on {host}: anyone who can reach this machine can use the page")
    say(f"kerasml try: {url}  (Ctrl-C stops)")
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    try:
        with sock:
            server.run(sockets=[sock])
    except KeyboardInterrupt:        # uvicorn has shut down cleanly and passes Ctrl-C on: the usual way out
        pass
    say("kerasml try: stopped")


def _open_when_started(server, url: str) -> None:
    import time

    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)
