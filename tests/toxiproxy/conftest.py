"""Fixtures for the Toxiproxy tests: one seeded embedded server per xdist worker,
real TCP peers on 127.0.0.1, port 0 everywhere."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
import requests
import toxiproxy
from toxiproxy_peers import ProxyHandle, RecordingSink, TcpServer, echo

from harness.toxiproxy import EmbeddedToxiproxy, toxiproxy_client


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedToxiproxy]:
    with EmbeddedToxiproxy(seed=20240501) as server:
        yield server


@pytest.fixture
def api(embedded: EmbeddedToxiproxy) -> Iterator[str]:
    """The embedded server's base URL; every proxy is deleted after the test."""
    yield embedded.url
    for name in requests.get(f"{embedded.url}/proxies", timeout=5).json():
        requests.delete(f"{embedded.url}/proxies/{name}", timeout=5)


@pytest.fixture
def client(api: str) -> toxiproxy.Toxiproxy:
    return toxiproxy_client(api)


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    yield server
    server.close()


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    server = RecordingSink()
    yield server
    server.close()


_names = itertools.count()


@pytest.fixture
def make_proxy(api: str) -> Callable[[str], ProxyHandle]:
    def make(upstream: str) -> ProxyHandle:
        name = f"proxy{next(_names)}"
        response = requests.post(
            f"{api}/proxies",
            json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream},
            timeout=5,
        )
        assert response.status_code == 201, response.text
        return ProxyHandle(api, name, response.json()["listen"])

    return make
