"""URL guard: every refused class, every IP spelling, policies, and no network use."""

from __future__ import annotations

import pytest

from pmd.download.errors import classify_error, is_transient
from pmd.download.guard import UrlPolicy, check_url, check_urls, classify_address, parse_ip_literal

STRICT = UrlPolicy()
OPEN = UrlPolicy(allow_loopback=True, allow_private=True)


@pytest.mark.parametrize("url,reason", [
    ("http://127.0.0.1/a.jpg", "url_refused_loopback"),
    ("http://127.9.9.9:8080/a.jpg", "url_refused_loopback"),
    ("http://2130706433/", "url_refused_loopback"),          # decimal
    ("http://0x7f000001/", "url_refused_loopback"),          # hex
    ("http://0177.0.0.1/", "url_refused_loopback"),          # octal
    ("http://127.1/", "url_refused_loopback"),               # short form
    ("http://[::1]/", "url_refused_loopback"),
    ("http://[::ffff:127.0.0.1]/", "url_refused_loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:7f00:1]/", "url_refused_loopback"),
    ("http://localhost:8765/x.jpg", "url_refused_loopback"),
    ("http://img.localhost/x.jpg", "url_refused_loopback"),
    ("http://10.1.2.3/", "url_refused_private"),
    ("http://172.16.5.4/", "url_refused_private"),
    ("http://192.168.1.1/", "url_refused_private"),
    ("http://100.64.0.1/", "url_refused_private"),          # carrier-grade NAT
    ("http://[fc00::1]/", "url_refused_private"),
    ("http://[::ffff:10.0.0.1]/", "url_refused_private"),
    ("http://169.254.169.254/latest/meta-data/", "url_refused_metadata"),
    ("http://[fd00:ec2::254]/", "url_refused_metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "url_refused_metadata"),
    ("http://METADATA.GOOGLE.INTERNAL./", "url_refused_metadata"),
    ("http://metadata.azure.com/", "url_refused_metadata"),
    ("http://[::ffff:169.254.169.254]/", "url_refused_metadata"),
    ("http://169.254.1.1/", "url_refused_link_local"),
    ("http://[fe80::1]/", "url_refused_link_local"),
    ("http://224.0.0.1/", "url_refused_multicast"),
    ("http://240.0.0.1/", "url_refused_reserved"),
    ("http://255.255.255.255/", "url_refused_reserved"),
    ("http://0.0.0.0/", "url_refused_unspecified"),
    ("http://[::]/", "url_refused_unspecified"),
    ("ftp://example.com/a.jpg", "bad_url"),
    ("file:///etc/passwd", "bad_url"),
    ("http:///no-host", "bad_url"),
    ("not a url", "bad_url"),
    ("http://exa mple.com/", "bad_url"),
    ("http://1.2.3.4:99999/", "bad_url"),
    ("", "bad_url"),
    ("http://images.invalid/a.jpg", "unresolvable_host"),
])
def test_refused_urls_get_their_class(url, reason):
    v = check_url(url, STRICT)
    assert (v.keep, v.reason) == (False, reason)


def test_public_literals_are_allowed():
    assert check_url("http://8.8.8.8/a.jpg").keep
    assert check_url("https://[2606:4700::1111]/a.jpg").keep
    assert check_url("http://[::ffff:8.8.8.8]/").keep


def test_policy_opens_loopback_and_private_but_never_metadata():
    assert check_url("http://127.0.0.1:8765/a.jpg", UrlPolicy(allow_loopback=True)).keep
    assert check_url("http://localhost/a.jpg", UrlPolicy(allow_loopback=True)).keep
    assert check_url("http://10.0.0.1/", UrlPolicy(allow_loopback=True)).reason == "url_refused_private"
    assert check_url("http://10.0.0.1/", UrlPolicy(allow_private=True)).keep
    assert check_url("http://127.0.0.1/", UrlPolicy(allow_private=True)).reason == "url_refused_loopback"
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://metadata.google.internal/"):
        assert check_url(url, OPEN).reason == "url_refused_metadata"
    assert check_url("http://[::ffff:127.0.0.1]/", OPEN).keep


def test_names_are_refused_when_any_address_is_refused():
    table = {"mixed.example": ("93.184.216.34", "10.0.0.7"), "public.example": ("93.184.216.34", "2606:2800::1"),
             "meta.example": ("169.254.169.254",)}

    def resolve(host):
        return table[host]

    assert check_url("http://mixed.example/a.jpg", STRICT, resolve).reason == "url_refused_private"
    assert check_url("http://mixed.example/a.jpg", UrlPolicy(allow_private=True), resolve).keep
    assert check_url("http://public.example/a.jpg", STRICT, resolve).keep
    assert check_url("http://meta.example/", OPEN, resolve).reason == "url_refused_metadata"


def test_check_urls_resolves_each_host_once():
    calls = []

    def resolve(host):
        calls.append(host)
        return ("93.184.216.34",)

    urls = [f"http://cdn.example/{i}.jpg" for i in range(50)] + ["http://127.0.0.1/x", "gopher://x/"]
    verdicts = check_urls(urls, STRICT, resolve)
    assert calls == ["cdn.example"]
    assert [v.reason for v in verdicts[-2:]] == ["url_refused_loopback", "bad_url"]
    assert all(v.keep for v in verdicts[:50])


def test_parse_ip_literal_forms():
    assert str(parse_ip_literal("0x7f.1")) == "127.0.0.1"
    assert str(parse_ip_literal("3232235777")) == "192.168.1.1"
    assert parse_ip_literal("example.com") is None
    assert parse_ip_literal("1.cafe") is None  # a name, not a number
    with pytest.raises(ValueError):
        parse_ip_literal("[zz::zz::1]")


def test_classify_address_tunnelled_ipv4():
    import ipaddress
    assert classify_address(ipaddress.ip_address("2002:7f00:1::")) == "url_refused_loopback"  # 6to4
    assert classify_address(ipaddress.ip_address("64:ff9b::a00:1")) == "url_refused_private"  # NAT64


@pytest.mark.parametrize("message,status,error", [
    ("HTTP Error 404: Not Found", "failed_to_download", "http_404"),
    ("HTTP Error 500: Internal Server Error", "failed_to_download", "http_500"),
    ("HTTP Error 418: I'm a teapot", "failed_to_download", "http_error"),
    ("<urlopen error timed out>", "failed_to_download", "timeout"),
    ("The read operation timed out", "failed_to_download", "timeout"),
    ("Image decoding error", "failed_to_resize", "not_an_image"),
    ("IncompleteRead(1303 bytes read, 1303 more expected)", "failed_to_download", "truncated_image"),
    ("Use of image disallowed by X-Robots-Tag directive", "failed_to_download", "disallowed_by_header"),
    ("<urlopen error url_refused_loopback: redirect to http://127.0.0.1/>", "failed_to_download",
     "url_refused_loopback"),
    ("<urlopen error [Errno 111] Connection refused>", "failed_to_download", "connection_refused"),
    ("<urlopen error [Errno -2] Name or service not known>", "failed_to_download", "dns_error"),
    ("image too small", "failed_to_resize", "image_too_small"),
    ("something odd", "failed_to_resize", "decode_error"),
    ("something odd", "failed_to_download", "download_error"),
    (None, None, "download_error"),
])
def test_classify_error(message, status, error):
    assert classify_error(message, status) == error


def test_transient_errors():
    assert is_transient("timeout") and is_transient("http_503")
    assert not is_transient("http_404") and not is_transient("not_an_image")
