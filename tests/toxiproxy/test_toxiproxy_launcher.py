"""The launcher's choice (external, binary, embedded) and the `harness toxiproxy` command.

The "binary" case runs a stand-in `toxiproxy-server` that accepts the real binary's
`-host`/`-port` flags and execs `harness toxiproxy`, so the launcher's process
handling and the CLI command are both exercised for real."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import requests

from harness.toxiproxy import EmbeddedToxiproxy, toxiproxy_client, toxiproxy_server
from harness.toxiproxy.launcher import URL_ENV

STAND_IN = f"""#!{sys.executable}
import sys
from harness.cli import main

flags = dict(zip(sys.argv[1::2], sys.argv[2::2]))
sys.exit(main(["toxiproxy", "--host", flags["-host"], "--port", flags["-port"]]))
"""


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_external_url_wins(monkeypatch: pytest.MonkeyPatch, embedded: EmbeddedToxiproxy) -> None:
    monkeypatch.setenv(URL_ENV, embedded.url + "/")
    with toxiproxy_server() as server:
        assert server.kind == "external"
        assert server.url == embedded.url
        assert server.port == embedded.port
        assert toxiproxy_client(server).running()


def test_embedded_when_no_binary(empty_path: Path) -> None:
    with toxiproxy_server(seed=3) as server:
        assert server.kind == "embedded"
        assert requests.get(f"{server.url}/version", timeout=5).status_code == 200
        client = toxiproxy_client(server)
        assert client.proxies() == {}


def test_binary_on_path_is_started_and_stopped(empty_path: Path) -> None:
    binary = empty_path / "toxiproxy-server"
    binary.write_text(STAND_IN)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    with toxiproxy_server() as server:
        assert server.kind == "binary"
        assert server.host == "127.0.0.1"
        assert requests.get(f"{server.url}/version", timeout=5).status_code == 200
        url = server.url
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/version", timeout=5)


def test_embedded_start_stop_is_reentrant() -> None:
    server = EmbeddedToxiproxy()
    server.start()
    first = server.url
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert requests.get(f"{server.url}/version", timeout=5).ok
    assert first.startswith("http://127.0.0.1:")
