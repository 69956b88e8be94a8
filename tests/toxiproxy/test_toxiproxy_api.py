"""Every route of the embedded server's HTTP API, success and error statuses, as
Toxiproxy 2.x answers them; then the toxiproxy-python client against it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
import toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy_peers import ProxyHandle, TcpServer

Json = dict[str, Any]


def post(url: str, body: Any = None, raw: bytes | None = None) -> requests.Response:
    if raw is not None:
        return requests.post(url, data=raw, timeout=5)
    return requests.post(url, json=body, timeout=5)


def create(api: str, name: str, upstream: str, **extra: Any) -> requests.Response:
    body = {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, **extra}
    return post(f"{api}/proxies", body)


def refused(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_version(api: str) -> None:
    response = requests.get(f"{api}/version", timeout=5)
    assert response.status_code == 200
    assert response.json()["version"].startswith("2.")


def test_proxy_index_is_an_object_keyed_by_name(api: str, echo_server: TcpServer) -> None:
    assert requests.get(f"{api}/proxies", timeout=5).json() == {}
    create(api, "a", echo_server.address)
    create(api, "b", echo_server.address)
    index = requests.get(f"{api}/proxies", timeout=5).json()
    assert set(index) == {"a", "b"}
    assert index["a"]["upstream"] == echo_server.address


def test_create_returns_201_with_the_bound_address(api: str, echo_server: TcpServer) -> None:
    response = create(api, "created", echo_server.address)
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "name": "created",
        "listen": body["listen"],
        "upstream": echo_server.address,
        "enabled": True,
        "toxics": [],
    }
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_create_errors(api: str, echo_server: TcpServer) -> None:
    assert create(api, "dup", echo_server.address).status_code == 201
    conflict = create(api, "dup", echo_server.address)
    assert conflict.status_code == 409
    assert conflict.json() == {"error": "proxy already exists", "status": 409}

    for raw in (b"", b"{not json", b"[1, 2]"):
        bad = post(f"{api}/proxies", raw=raw)
        assert bad.status_code == 400, raw
        assert bad.json()["error"].startswith("bad request body")

    no_name = post(f"{api}/proxies", {"upstream": echo_server.address})
    assert no_name.status_code == 400
    assert no_name.json() == {"error": "missing required field: name", "status": 400}
    no_upstream = post(f"{api}/proxies", {"name": "x"})
    assert no_upstream.json() == {"error": "missing required field: upstream", "status": 400}

    wrong_type = post(f"{api}/proxies", {"name": "x", "upstream": "y:1", "enabled": "yes"})
    assert wrong_type.status_code == 400


def test_create_on_a_port_in_use_is_a_500_like_toxiproxy(api: str, echo_server: TcpServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        response = post(f"{api}/proxies", {"name": "busy", "listen": listen,
                                           "upstream": echo_server.address})
    assert response.status_code == 500
    assert response.json() == {
        "error": f"listen tcp {listen}: bind: address already in use",
        "status": 500,
    }
    assert requests.get(f"{api}/proxies/busy", timeout=5).status_code == 404


def test_create_disabled_does_not_listen(api: str, echo_server: TcpServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        listen = f"127.0.0.1:{probe.getsockname()[1]}"
    body = post(f"{api}/proxies", {"name": "off", "listen": listen,
                                   "upstream": echo_server.address, "enabled": False}).json()
    assert body["enabled"] is False and body["listen"] == listen
    assert refused(listen)


def test_show_update_delete(api: str, echo_server: TcpServer) -> None:
    listen = create(api, "p", echo_server.address).json()["listen"]
    assert requests.get(f"{api}/proxies/p", timeout=5).json()["listen"] == listen
    assert requests.get(f"{api}/proxies/missing", timeout=5).status_code == 404

    disabled = post(f"{api}/proxies/p", {"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert refused(listen)
    enabled = requests.patch(f"{api}/proxies/p", json={"enabled": True}, timeout=5)
    assert enabled.json() == {"name": "p", "listen": listen, "upstream": echo_server.address,
                              "enabled": True, "toxics": []}
    moved = post(f"{api}/proxies/p", {"upstream": "127.0.0.1:1"}).json()
    assert moved["upstream"] == "127.0.0.1:1" and moved["enabled"] is True

    missing = post(f"{api}/proxies/missing", {"enabled": False})
    assert missing.status_code == 404
    assert missing.json() == {"error": "proxy not found", "status": 404}
    assert post(f"{api}/proxies/p", raw=b"{").status_code == 400

    assert requests.delete(f"{api}/proxies/p", timeout=5).status_code == 204
    assert refused(listen)
    gone = requests.delete(f"{api}/proxies/p", timeout=5)
    assert gone.status_code == 404 and gone.json()["error"] == "proxy not found"


def test_populate_creates_keeps_and_replaces(api: str, echo_server: TcpServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        fixed = f"127.0.0.1:{probe.getsockname()[1]}"
    first = post(f"{api}/populate", [
        {"name": "one", "listen": fixed, "upstream": echo_server.address},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": echo_server.address,
         "enabled": False},
    ])
    assert first.status_code == 201
    proxies = {p["name"]: p for p in first.json()["proxies"]}
    assert proxies["one"]["listen"] == fixed and proxies["one"]["enabled"] is True
    assert proxies["two"]["enabled"] is False

    requests.post(f"{api}/proxies/one/toxics", json={"type": "latency"}, timeout=5)
    same = post(f"{api}/populate", [{"name": "one", "listen": fixed,
                                     "upstream": echo_server.address}])
    assert same.json()["proxies"][0]["toxics"], "an unchanged proxy is kept, toxics and all"
    changed = post(f"{api}/populate", [{"name": "one", "listen": fixed,
                                        "upstream": "127.0.0.1:1"}])
    assert changed.json()["proxies"][0]["toxics"] == []
    assert changed.json()["proxies"][0]["upstream"] == "127.0.0.1:1"


def test_populate_errors(api: str, echo_server: TcpServer) -> None:
    missing = post(f"{api}/populate", [{"name": "ok", "upstream": echo_server.address},
                                       {"name": "no-upstream"}])
    assert missing.status_code == 400
    assert missing.json() == {"error": "missing required field: upstream at proxy 2",
                              "status": 400, "proxies": None}
    assert "ok" not in requests.get(f"{api}/proxies", timeout=5).json(), "validated first"
    assert post(f"{api}/populate", {"name": "x"}).status_code == 400
    assert post(f"{api}/populate", raw=b"nope").status_code == 400


def test_reset_enables_proxies_and_removes_toxics(api: str, echo_server: TcpServer) -> None:
    listen = create(api, "r", echo_server.address).json()["listen"]
    post(f"{api}/proxies/r/toxics", {"type": "latency", "attributes": {"latency": 10}})
    post(f"{api}/proxies/r", {"enabled": False})
    response = post(f"{api}/reset")
    assert response.status_code == 204 and response.content == b""
    body = requests.get(f"{api}/proxies/r", timeout=5).json()
    assert body["enabled"] is True and body["toxics"] == []
    assert not refused(listen)


def test_toxic_routes(api: str, echo_server: TcpServer) -> None:
    create(api, "t", echo_server.address)
    base = f"{api}/proxies/t/toxics"
    assert requests.get(base, timeout=5).json() == []

    created = post(base, {"type": "latency", "attributes": {"latency": 25}})
    assert created.status_code == 200
    assert created.json() == {"name": "latency_downstream", "type": "latency",
                              "stream": "downstream", "toxicity": 1.0,
                              "attributes": {"latency": 25, "jitter": 0}}
    up = post(base, {"name": "cut", "type": "limit_data", "stream": "upstream",
                     "toxicity": 0.5, "attributes": {"bytes": 10, "unknown": 1}}).json()
    assert up == {"name": "cut", "type": "limit_data", "stream": "upstream",
                  "toxicity": 0.5, "attributes": {"bytes": 10}}
    # Toxiproxy lists upstream toxics first.
    assert [t["name"] for t in requests.get(base, timeout=5).json()] == [
        "cut", "latency_downstream"]
    assert requests.get(f"{base}/cut", timeout=5).json() == up

    updated = post(f"{base}/latency_downstream", {"attributes": {"jitter": 5}})
    assert updated.status_code == 200
    assert updated.json()["attributes"] == {"latency": 25, "jitter": 5}
    patched = requests.patch(f"{base}/cut", json={"toxicity": 0.25}, timeout=5).json()
    assert patched["toxicity"] == 0.25 and patched["attributes"] == {"bytes": 10}

    assert requests.delete(f"{base}/cut", timeout=5).status_code == 204
    assert [t["name"] for t in requests.get(base, timeout=5).json()] == ["latency_downstream"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"type": "latency"}, 409, "toxic already exists"),
        ({"type": "no_such_toxic"}, 400, "invalid toxic type"),
        ({"type": "latency", "name": "x", "stream": "sideways"}, 400,
         "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "name": "y", "attributes": {"latency": "slow"}}, 400, None),
        ({"type": "latency", "name": "z", "toxicity": "high"}, 400, None),
    ],
)
def test_toxic_create_errors(api: str, echo_server: TcpServer, body: Json, status: int,
                             error: str | None) -> None:
    create(api, "e", echo_server.address)
    post(f"{api}/proxies/e/toxics", {"type": "latency"})
    response = post(f"{api}/proxies/e/toxics", body)
    assert response.status_code == status
    assert response.json()["status"] == status
    if error is not None:
        assert response.json()["error"] == error
    else:
        assert response.json()["error"].startswith("bad request body: ")


def test_toxic_not_found_errors(api: str, echo_server: TcpServer) -> None:
    create(api, "n", echo_server.address)
    toxic_404 = {"error": "toxic not found", "status": 404}
    proxy_404 = {"error": "proxy not found", "status": 404}
    assert requests.get(f"{api}/proxies/n/toxics/x", timeout=5).json() == toxic_404
    assert post(f"{api}/proxies/n/toxics/x", {"attributes": {}}).json() == toxic_404
    assert requests.delete(f"{api}/proxies/n/toxics/x", timeout=5).json() == toxic_404
    for response in (
        requests.get(f"{api}/proxies/none/toxics", timeout=5),
        post(f"{api}/proxies/none/toxics", {"type": "latency"}),
        requests.get(f"{api}/proxies/none/toxics/x", timeout=5),
        requests.delete(f"{api}/proxies/none/toxics/x", timeout=5),
    ):
        assert response.status_code == 404 and response.json() == proxy_404
    assert post(f"{api}/proxies/n/toxics", raw=b"").status_code == 400


def test_router_statuses(api: str) -> None:
    assert requests.get(f"{api}/nowhere", timeout=5).status_code == 404
    assert requests.get(f"{api}/proxies/", timeout=5).status_code == 404
    assert requests.put(f"{api}/proxies", timeout=5).status_code == 405
    assert requests.get(f"{api}/reset", timeout=5).status_code == 405
    browser = requests.get(f"{api}/proxies", headers={"User-Agent": "Mozilla/5.0"}, timeout=5)
    assert browser.status_code == 403


def test_keep_alive_session(api: str) -> None:
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{api}/version", timeout=5).status_code == 200


def test_toxiproxy_python_client(
    client: toxiproxy.Toxiproxy, echo_server: TcpServer,
    make_proxy: Callable[[str], ProxyHandle],
) -> None:
    assert client.running()
    assert b"version" in client.version()
    proxy = client.create(upstream=echo_server.address, name="py")
    assert proxy.listen.startswith("127.0.0.1:")
    with pytest.raises(ProxyExists):
        client.create(upstream=echo_server.address, name="py")
    assert set(client.proxies()) == {"py"}
    assert client.get_proxy("py").upstream == echo_server.address

    proxy.add_toxic(type="latency", attributes={"latency": 5})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", attributes={"rate": 100})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bw"}
    assert toxics["bw"].attributes == {"rate": 100} and toxics["bw"].stream == "upstream"
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="nonsense")
    assert proxy.destroy_toxic("bw")
    assert proxy.get_toxic("bw") is None

    with proxy.down():
        assert client.get_proxy("py").enabled is False
    assert client.get_proxy("py").enabled is True

    populated = client.populate([
        {"name": "pop", "upstream": echo_server.address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in populated] == ["pop"]
    assert client.reset()
    assert client.get_proxy("py").toxics() == {}
    client.destroy(proxy)
    with pytest.raises(NotFound):
        proxy.destroy()
    client.destroy_all()
    assert client.proxies() == {}
