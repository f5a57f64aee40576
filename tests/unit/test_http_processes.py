"""Binding the port that the HTTP processes of `ursa serve` share."""

from __future__ import annotations

import socket

import pytest

from app.server.http_helpers import bind_listeners
from app.server.startup import ConfigurationError


def _reuses_port(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


def test_one_process_binds_one_ordinary_socket():
    (sock,) = bind_listeners("127.0.0.1", 0, 1)
    with sock:
        assert not _reuses_port(sock)


def test_several_processes_share_the_port():
    listeners = bind_listeners("127.0.0.1", 0, 3)
    try:
        ports = {sock.getsockname()[1] for sock in listeners}
        assert len(ports) == 1
        assert ports != {0}
        assert all(_reuses_port(sock) for sock in listeners)
    finally:
        for sock in listeners:
            sock.close()


@pytest.mark.parametrize("count", [1, 2])
def test_a_port_in_use_is_reported_once(count):
    with socket.socket() as other:  # another program, even one sharing its port
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port} is already in use"):
            bind_listeners("127.0.0.1", port, count)
