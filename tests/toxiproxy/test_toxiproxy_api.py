"""Every route of the embedded server's HTTP API, success and error statuses, as
Toxiproxy 2.x answers them; then the toxiproxy-python client against it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
import toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy_peers import ProxyHandle, RecordingSink, TcpServer

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


# --- fidelity to the real server's replies ----------------------------------------------
def strict_json(response: requests.Response) -> Any:
    """The body as strict JSON: NaN and Infinity are not JSON and must never be sent."""
    def refuse(name: str) -> None:
        raise AssertionError(f"the server sent {name}, which is not JSON: {response.text!r}")

    return json.loads(response.text, parse_constant=refuse)


def test_error_replies_are_plain_text_like_go_http_error(api: str, echo_server: TcpServer) -> None:
    create(api, "dup", echo_server.address)
    for response, body in (
        (create(api, "dup", echo_server.address), '{"error":"proxy already exists","status":409}'),
        (requests.get(f"{api}/proxies/none", timeout=5),
         '{"error":"proxy not found","status":404}'),
        (requests.get(f"{api}/nowhere", timeout=5), "404 page not found"),
    ):
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.text == body + "\n"
    ok = requests.get(f"{api}/proxies/dup", timeout=5)
    assert ok.headers["Content-Type"] == "application/json"


def test_stream_is_read_in_any_case(
    client: toxiproxy.Toxiproxy, sink: RecordingSink
) -> None:
    """Go's ParseDirection lowercases the stream; the toxic keeps the name and spelling sent
    (toxic_collection.go), and it really acts on the upstream direction."""
    proxy = client.create(upstream=sink.address, name="cased")
    proxy.add_toxic(type="limit_data", stream="UpStream", attributes={"bytes": 3})
    toxic = proxy.get_toxic("limit_data_UpStream")
    assert toxic is not None and toxic.stream == "UpStream"
    host, port = proxy.listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"0123456789")
        recording = sink.next_recording()
        recording.wait_for(lambda r: r.closed)
    assert recording.data == b"012"


def test_populate_with_no_proxies_returns_null(api: str) -> None:
    response = post(f"{api}/populate", [])
    assert response.status_code == 201
    assert strict_json(response) == {"proxies": None}


def _has_ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


def _echo_at(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"dual")
        return sock.recv(16)


@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="no dual-stack IPv6 here")
@pytest.mark.parametrize("listen", [None, "", "0.0.0.0:0", "[::]:0"])
def test_wildcard_listen_binds_dual_stack_like_go(
    api: str, echo_server: TcpServer, listen: str | None
) -> None:
    body: Json = {"name": "everywhere", "upstream": echo_server.address}
    if listen is not None:
        body["listen"] = listen
    response = post(f"{api}/proxies", body)
    assert response.status_code == 201, response.text
    bound = response.json()["listen"]
    assert bound.startswith("[::]:"), bound
    port = int(bound.rsplit(":", 1)[1])
    assert _echo_at("127.0.0.1", port) == b"dual"
    if _has_ipv6_loopback():
        assert _echo_at("::1", port) == b"dual"


# --- validation: what cannot be served is a 400, never a 500 or invalid JSON -------------
@pytest.mark.parametrize(
    ("listen", "error"),
    [
        ("127.0.0.1:99999", "listen tcp: address 99999: invalid port"),
        ("127.0.0.1:65536", "listen tcp: address 65536: invalid port"),
        ("127.0.0.1:no-such-service", "listen tcp: lookup tcp/no-such-service: unknown port"),
        ("127.0.0.1", "listen tcp 127.0.0.1: address 127.0.0.1: missing port in address"),
    ],
)
def test_unservable_listen_address_is_a_400(
    client: toxiproxy.Toxiproxy, api: str, echo_server: TcpServer, listen: str, error: str
) -> None:
    with pytest.raises(InvalidToxic) as raised:  # the client's name for any 400
        client.create(upstream=echo_server.address, name="bad-listen", listen=listen)
    assert json.loads(raised.value.args[0]) == {"error": error, "status": 400}
    populated = post(f"{api}/populate", [
        {"name": "fine", "listen": "127.0.0.1:0", "upstream": echo_server.address},
        {"name": "bad-listen", "listen": listen, "upstream": echo_server.address},
    ])
    assert populated.status_code == 400
    assert strict_json(populated) == {"error": error, "status": 400, "proxies": None}
    assert client.proxies() == {}, "nothing is created or bound"
    disabled = create(api, "later", echo_server.address)
    assert disabled.status_code == 201
    moved = post(f"{api}/proxies/later", {"listen": listen})
    assert moved.status_code == 400 and strict_json(moved)["error"] == error


@pytest.mark.parametrize("route", ["/proxies", "/populate", "/proxies/deep/toxics"])
def test_deeply_nested_json_is_a_400(api: str, echo_server: TcpServer, route: str) -> None:
    create(api, "deep", echo_server.address)
    depth = 100_000
    response = post(f"{api}{route}", raw=b"[" * depth + b"]" * depth)
    assert response.status_code == 400
    assert strict_json(response)["error"] == "bad request body: exceeded max depth"
    assert requests.get(f"{api}/version", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "toxic",
    [
        b'{"type": "latency", "toxicity": NaN}',
        b'{"type": "latency", "toxicity": Infinity}',
        b'{"type": "latency", "toxicity": -Infinity}',
        b'{"type": "latency", "toxicity": 1e39}',
        b'{"type": "latency", "toxicity": 1e400}',
        b'{"type": "latency", "attributes": {"latency": 9223372036854775808}}',
        b'{"type": "latency", "attributes": {"latency": NaN}}',
    ],
)
def test_numbers_go_cannot_hold_are_a_400(api: str, echo_server: TcpServer, toxic: bytes) -> None:
    create(api, "nan", echo_server.address)
    post(f"{api}/proxies/nan/toxics", {"type": "latency", "name": "kept"})
    created = post(f"{api}/proxies/nan/toxics", raw=toxic)
    assert created.status_code == 400
    assert strict_json(created)["error"].startswith("bad request body: ")
    updated = post(f"{api}/proxies/nan/toxics/kept", raw=toxic.replace(b'"type": "latency", ', b""))
    assert updated.status_code == 400
    assert strict_json(updated)["error"].startswith("bad request body: ")
    # Nothing half-applied, and every listing is still strict JSON.
    assert [t["name"] for t in strict_json(requests.get(f"{api}/proxies/nan/toxics", timeout=5))
            ] == ["kept"]
    strict_json(requests.get(f"{api}/proxies", timeout=5))

