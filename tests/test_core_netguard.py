import socket
import sys

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


def _probe() -> dict:
    """What the guard does in the calling process; never touches the network when it is off."""
    import socket as s

    from pmd import netguard

    if not netguard.installed():  # an unguarded child: report it rather than resolve a public name
        return {"installed": False}
    out = {"installed": True}
    for what, call in (("resolve", lambda: s.getaddrinfo("pmd-netguard-probe.example.com", 80)),
                       ("gethostbyname", lambda: s.gethostbyname("example.org")),
                       ("connect", lambda: s.create_connection(("93.184.216.34", 80), timeout=1))):
        try:
            call()
            out[what] = "allowed"
        except netguard.NetworkAccessError as e:
            out[what] = type(e).__name__
    out["loopback"] = s.getaddrinfo("localhost", 80)[0][4][0]
    return out


GUARDED = {"installed": True, "resolve": "NameResolutionRefused", "gethostbyname": "NameResolutionRefused",
           "connect": "NetworkAccessError"}


def test_names_are_refused_before_any_lookup_and_numbers_pass_to_connect(monkeypatch):
    import pmd.netguard as ng

    assert ng.installed()
    with pytest.raises(ng.NameResolutionRefused, match="no DNS"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(socket.gaierror):  # code handling an offline machine handles the guard too
        socket.gethostbyname("metadata.google.internal")
    with pytest.raises(NetworkAccessError):
        socket.gethostbyaddr("8.8.8.8")
    assert socket.getaddrinfo("127.1", 80)[0][4][0] == "127.0.0.1"  # numeric: no lookup
    assert socket.getaddrinfo("10.1.2.3", 80, proto=socket.IPPROTO_TCP)[0][4][0] == "10.1.2.3"
    assert {i[4][0] for i in socket.getaddrinfo("localhost", 80)} <= {"127.0.0.1", "::1"}
    assert socket.getfqdn("example.net")  # the stdlib's own fallback for a name that does not resolve


def test_child_processes_install_the_guard_at_startup():
    import json
    import multiprocessing
    import os
    import subprocess

    assert os.environ["PMD_NETGUARD"] == "1"
    code = "import json, test_core_netguard as t; print(json.dumps(t._probe()))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stderr
    assert {k: v for k, v in json.loads(r.stdout).items() if k != "loopback"} == GUARDED
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # img2dataset's start method
        got = pool.apply(_probe)
    assert {k: v for k, v in got.items() if k != "loopback"} == GUARDED


def test_spark_python_workers_are_guarded():
    from pmd.spark.session import spark_session

    from pyspark import cloudpickle

    spark = spark_session(app_name="pmd-test")
    module = sys.modules[_probe.__module__]
    cloudpickle.register_pickle_by_value(module)  # the workers cannot import this test module
    try:
        got = spark.sparkContext.parallelize([0], 1).map(lambda _: _probe()).collect()[0]
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert {k: v for k, v in got.items() if k != "loopback"} == GUARDED
