"""S1: the service refuses to listen on a non-loopback address unless API keys are configured."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.security_checks import InsecureBindError, check_bind, is_loopback
from service.settings import Settings
from tests.reliability.reliability_helpers import (
    API_KEYS,
    ROOT,
    free_port,
    live_server,
    server_env,
)

FEEDFORWARD = Path(sys.executable).with_name("feedforward")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"]
)
def test_loopback_binds_need_no_keys(host):
    assert is_loopback(host)
    check_bind(Settings(host=host, api_keys=""))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", ""])
def test_public_binds_without_keys_are_refused_naming_the_setting(host):
    with pytest.raises(InsecureBindError) as caught:
        check_bind(Settings(host=host, api_keys=""))
    assert "FEEDFORWARD_API_KEYS" in caught.value.message
    assert caught.value.code != 0  # a SystemExit: uncaught, the process exits non-zero


def test_public_bind_with_keys_is_allowed():
    check_bind(Settings(host="0.0.0.0", api_keys=API_KEYS))


def test_host_argument_overrides_the_settings():
    with pytest.raises(InsecureBindError):
        check_bind(Settings(host="127.0.0.1", api_keys=""), "0.0.0.0")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_serve_on_all_interfaces_without_keys_exits_non_zero_naming_the_setting(tmp_path):
    env = server_env(tmp_path)
    del env["FEEDFORWARD_API_KEYS"]
    port = free_port()
    command = [str(FEEDFORWARD), "serve", "--host", "0.0.0.0", "--port", str(port)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=30)
    assert result.returncode != 0
    assert b"FEEDFORWARD_API_KEYS" in result.stderr
    assert b"Traceback" not in result.stderr
    assert not _listening(port)


def _own_public_address() -> str | None:
    """A non-loopback IPv4 address of this machine (the route a UDP socket would take), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if is_loopback(address) or address == "0.0.0.0" else address


@pytest.mark.anyio
@pytest.mark.parametrize(
    "server", [("10.0.0.5", 8000), ("::ffff:192.168.1.2", 80), ("fe80::1", 80)]
)
async def test_without_keys_a_request_to_a_public_address_is_refused(tmp_path, server):
    app = create_app(Settings(data_dir=tmp_path, workers=0, api_keys=""))
    scope_server = {"server": server}

    async def asgi(scope, receive, send):  # the address the client connected to, as uvicorn says
        await app({**scope, **scope_server}, receive, send)

    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="http://localhost"
    ) as client:
        refused = await client.get("/v1/datasets")
        assert refused.status_code == 403
        assert "FEEDFORWARD_API_KEYS" in refused.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200  # probes stay answered
        scope_server["server"] = ("::ffff:127.0.0.1", 80)  # dual-stack loopback is loopback
        assert (await client.get("/v1/datasets")).status_code == 200


@pytest.mark.slow
def test_uvicorn_by_hand_on_all_interfaces_without_keys_answers_only_on_loopback(tmp_path):
    address = _own_public_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect to")
    with live_server(tmp_path, extra_args=["--host", "0.0.0.0"], api_keys="") as server:
        assert httpx.get(f"{server.base_url}/v1/datasets", timeout=10).status_code == 200
        outside = f"http://{address}:{server.port}"
        refused = httpx.get(f"{outside}/v1/datasets", headers={"Host": "localhost"}, timeout=10)
        assert refused.status_code == 403  # a Host header any client can forge does not help
        assert "FEEDFORWARD_API_KEYS" in refused.json()["detail"]


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
async def test_without_keys_a_request_a_proxy_forwarded_is_refused(tmp_path, header):
    # nginx's default proxy_pass reaches us on loopback with Host 127.0.0.1: only the
    # forwarding headers say the client is elsewhere
    for keys, expected in (("", 403), (API_KEYS, 401)):
        app = create_app(Settings(data_dir=tmp_path / (keys or "none"), workers=0, api_keys=keys))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 5000)),
            base_url="http://127.0.0.1:8000",
        ) as client:
            forwarded = await client.get("/v1/datasets", headers={header: "203.0.113.9"})
            assert forwarded.status_code == expected  # with keys, authentication decides
            if expected == 403:
                assert "proxy" in forwarded.json()["detail"]
                assert (await client.get("/v1/datasets")).status_code == 200
                assert (await client.get("/healthz", headers={header: "x"})).status_code == 200
