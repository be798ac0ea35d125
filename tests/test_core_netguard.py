import socket

import pytest

from pmd.netguard import NetworkAccessError


def test_guard_refuses_non_loopback():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkAccessError):
            s.connect(("93.184.216.34", 80))
        with pytest.raises(NetworkAccessError):
            s.connect_ex(("10.0.0.1", 80))
    finally:
        s.close()
    with pytest.raises(NetworkAccessError):
        socket.create_connection(("8.8.8.8", 53), timeout=1)


def test_guard_allows_loopback():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port), timeout=2)
    c.close()
    srv.close()
