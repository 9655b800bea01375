"""The dashboard's Host check: addresses, localhost, this machine and configured names only (DNS rebinding)."""

from __future__ import annotations

import socket

import pytest

from app.dashboard.server import host_allowed


@pytest.mark.parametrize(
    ("host", "allowed", "answered"),
    [
        ("10.0.0.5:8080", (), True),
        ("[fe80::1]:8080", (), True),
        ("localhost", (), True),
        ("app.localhost:8080", (), True),
        (f"{socket.gethostname()}:8080", (), True),
        ("nas.lan:8080", (), False),
        ("nas.lan:8080", ("nas.lan",), True),
        ("NAS.LAN", ("nas.lan",), True),
        ("attacker.example", ("nas.lan",), False),
        ("", (), False),
    ],
)
def test_host_header(host, allowed, answered):
    assert host_allowed(host, allowed) is answered
