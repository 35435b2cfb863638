"""pipelines.hub.hub_unreachable_reason: huggingface_hub's offline mode, its HTTP session (proxies, HF_ENDPOINT),
and one line for a hub that does not answer. Never the real network: a closed local port and a local proxy."""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import constants
from huggingface_hub.utils import close_session

from pipelines.hub import hub_unreachable_reason

ROOT = Path(__file__).resolve().parents[1]
# counts the interpreter's socket audit events (DNS look-ups and connects) while the check runs
PROBE = """
import sys
events = []
sys.addaudithook(lambda name, args: events.append(name) if name.startswith(("socket.connect", "socket.getaddrinfo"))
                 else None)
from pipelines.hub import hub_unreachable_reason
print(repr(hub_unreachable_reason()))
print(len(events))
"""


def run_probe(**env: str) -> tuple[str, int]:
    env = {**{k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}, "PYTHONPATH": str(ROOT), **env}
    r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    reason, events = r.stdout.strip().splitlines()
    return reason, int(events)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the socket is: nothing listens there


def test_offline_mode_is_one_line_without_any_network_attempt():
    reason, events = run_probe(HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert "HF_HUB_OFFLINE=1" in reason and "\\n" not in reason
    assert events == 0


def test_unreachable_endpoint_is_one_line_quickly(monkeypatch, fresh_session):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    start = time.perf_counter()
    reason = hub_unreachable_reason()
    assert time.perf_counter() - start < 3
    assert reason == f"cannot reach {endpoint} (ConnectError)"


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A stand-in HTTP proxy: answers every request itself and records the absolute URL it was asked for."""

    seen: list[str] = []

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        _Proxy.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fresh_session():
    """huggingface_hub's shared HTTP session made anew (it reads the proxy variables when it is made), and
    dropped again afterwards."""
    close_session()
    yield
    close_session()


def test_requests_go_through_the_proxy(monkeypatch, fresh_session):
    """The hub's host does not resolve (.invalid), so an answer can only come through HTTP_PROXY."""
    for key in [k for k in os.environ if "PROXY" in k.upper()]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://hub.invalid")
    assert hub_unreachable_reason().startswith("cannot reach http://hub.invalid (")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        close_session()
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_port}")
        reason = hub_unreachable_reason()
    finally:
        server.shutdown()
        server.server_close()
    assert reason is None and _Proxy.seen == ["http://hub.invalid/"]
