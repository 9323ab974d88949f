from __future__ import annotations

import socket

import pytest

from ocrserve.errors import ConfigError
from ocrserve.server.app import _bind


def test_listening_socket_is_tcp_so_connections_get_nodelay() -> None:
    # asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP; without it
    # keep-alive responses wait ~40 ms on Nagle + delayed ACK.
    sock = _bind("inference_address", "127.0.0.1:0")
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_port_in_use_names_the_key() -> None:
    sock = _bind("inference_address", "127.0.0.1:0")
    port = sock.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match="management_address=127.0.0.1:.*cannot listen"):
            _bind("management_address", f"127.0.0.1:{port}")
    finally:
        sock.close()
