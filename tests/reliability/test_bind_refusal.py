"""S1: the service refuses to listen on a non-loopback address unless API keys are configured."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from service.security_checks import InsecureBindError, check_bind, is_loopback
from service.settings import Settings
from tests.reliability.reliability_helpers import API_KEYS, ROOT, free_port, server_env

FEEDFORWARD = Path(sys.executable).with_name("feedforward")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]"])
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
