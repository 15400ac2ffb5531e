"""Issue 11.1 (no password or token in any report) and 11.6 (no loopback/private/link-local targets by default)."""

from __future__ import annotations

import json
import socket

import dagster as dg
import pandas as pd
import pytest

from lpd_pipeline.defs.assets.dataset import raw_paintings
from lpd_pipeline.defs.resources import CurationResource, PaintingSourcesResource, ParquetIOManager, StorageResource
from lpd_pipeline.sources import addresses
from lpd_pipeline.sources.download import Downloader, DownloadError, DownloadPolicy
from lpd_pipeline.sources.manifest import collect_from_manifest, read_url_manifest
from lpd_pipeline.sources.met import MetSource
from lpd_pipeline.sources.urls import REDACTED, redact_url
from lpd_pipeline_tests.http_fixtures import FakeClock, FixtureServer, Reply, image_bytes

PNG = image_bytes("PNG", size=(32, 32), seed=1)
SECRETS = ("s3cr3t", "AKIAEXAMPLE", "abcdef0123456789abcdef", "tok-12345", "hunter2")


@pytest.fixture()
def server():
    with FixtureServer() as running:
        yield running


def downloader(dest, *, allow_private: bool = True, **overrides) -> Downloader:
    clock = FakeClock()
    settings = dict(timeout_s=2.0, retries=0, min_interval_s=0.0, allow_private_networks=allow_private)
    settings.update(overrides)
    return Downloader(dest, DownloadPolicy(**settings), sleep=clock.sleep, clock=clock.clock)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {text!r}"


# ----------------------------------------------------------------------------------------------- 11.1


@pytest.mark.parametrize(("url", "expected"), [
    ("http://user:s3cr3t@host.example/x.jpg", "http://***@host.example/x.jpg"),
    ("https://bucket.s3.amazonaws.com/a.png?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=abcdef0123456789abcdef"
     "&X-Amz-Expires=300", f"https://bucket.s3.amazonaws.com/a.png?X-Amz-Credential={REDACTED}"
                           f"&X-Amz-Signature={REDACTED}&X-Amz-Expires=300"),
    ("https://x.example/a.jpg?width=800&token=tok-12345&page=2",
     f"https://x.example/a.jpg?width=800&token={REDACTED}&page=2"),
    ("https://x.example/a.jpg?api_key=hunter2&sv=2020&sig=hunter2",
     f"https://x.example/a.jpg?api_key={REDACTED}&sv=2020&sig={REDACTED}"),
    ("https://x.example/a.jpg?hunter2", f"https://x.example/a.jpg?{REDACTED}"),  # a bare value: could be a token
    ("https://x.example/a.jpg?v=abcdef0123456789abcdef0123", f"https://x.example/a.jpg?v={REDACTED}"),
    ("https://x.example/a.jpg#access_token=tok-12345", f"https://x.example/a.jpg#access_token={REDACTED}"),
    ("https://x.example/山水/a.jpg?id=42", "https://x.example/山水/a.jpg?id=42"),  # nothing secret: unchanged
    ("http://user:s3cr3t@[::1/x.jpg?token=tok-12345", f"http://***@[::1/x.jpg?{REDACTED}"),  # unparseable
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_a_manifest_row_with_a_password_never_quotes_it(tmp_path):
    manifest = tmp_path / "urls.csv"
    manifest.write_text("url\nhttp://user:s3cr3t@host.example/x.jpg\n", encoding="utf-8")
    rows, failures = read_url_manifest(manifest)
    assert rows == [] and [f.reason for f in failures] == ["bad_url"]
    assert "credentials" in failures[0].detail and "***@host.example" in failures[0].detail
    assert_no_secret(repr(failures))


def test_failed_and_successful_downloads_report_urls_redacted(tmp_path, server):
    good = server.add("/good.png", Reply(body=PNG, content_type="image/png")) + "?token=tok-12345&w=1"
    gone = server.url("/gone.jpg") + "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=abcdef0123456789abcdef"
    manifest = tmp_path / "urls.csv"
    manifest.write_text(f"url,title\n{good},Good\n{gone},Gone\n", encoding="utf-8")
    paintings, failures = collect_from_manifest(manifest, downloader(tmp_path / "dl"))
    assert [f.reason for f in failures] == ["http_404"]
    assert failures[0].item == redact_url(gone) and REDACTED in failures[0].item
    assert paintings[0].source_ref == redact_url(good)  # a column of paintings.parquet
    assert_no_secret(repr(failures) + repr([p.to_row() for p in paintings]))
    with pytest.raises(DownloadError) as raised:
        downloader(tmp_path / "dl2").fetch_json(gone)
    assert_no_secret(str(raised.value))


@pytest.mark.parametrize("target", ["javascript://user:s3cr3t@x.example/?token=tok-12345",
                                    "ftp://user:s3cr3t@x.example/a.png?sig=hunter2"])
def test_a_refused_redirect_never_quotes_the_target_s_secrets(tmp_path, server, target):
    url = server.add("/hop", Reply(302, b"", None, headers={"Location": target}))
    result = downloader(tmp_path).fetch(url)
    assert result.reason == "http_302" and result.detail
    assert_no_secret(result.detail)


def test_met_failures_report_urls_redacted(tmp_path, server):
    server.add("/search", Reply(body=json.dumps({"objectIDs": [1]}).encode(), content_type="application/json"))
    image = server.url("/img/1.jpg") + "?sig=hunter2"
    record = {"objectID": 1, "isPublicDomain": True, "primaryImage": image, "title": "T", "medium": ""}
    server.add("/objects/1", Reply(body=json.dumps(record).encode(), content_type="application/json"))
    server.add("/img/1.jpg", Reply(404, b"no", "text/plain"))
    source = MetSource(downloader(tmp_path / "dl"), base_url=server.url(""), cache_objects=False)
    paintings, failures = source.collect("landscape", limit=1)
    assert paintings == [] and [f.reason for f in failures] == ["http_404"]
    assert_no_secret(repr(failures))


def test_no_password_reaches_the_rejection_table_the_log_or_the_asset_page(tmp_path, server):
    """The issue's path: manifest row -> rejections.parquet, Dagster log, asset markdown."""
    good = server.add("/good.png", Reply(body=image_bytes("PNG", size=(64, 64), seed=3), content_type="image/png"))
    manifest = tmp_path / "urls.csv"
    manifest.write_text(f"url\nhttp://user:s3cr3t@host.example/x.jpg\n{good}?token=tok-12345\n"
                        f"{server.url('/missing.png')}?api_key=hunter2\n", encoding="utf-8")
    storage = StorageResource(storage_root=str(tmp_path / "storage"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([raw_paintings], instance=instance, resources={
        "storage": storage,
        "painting_sources": PaintingSourcesResource(url_manifest=str(manifest), allow_private_addresses=True),
        "curation_settings": CurationResource(workers=1),
        "parquet_io_manager": ParquetIOManager(storage=storage),
    })
    assert result.success
    rejections = pd.read_parquet(tmp_path / "storage" / "dataset" / "rejections" / "ingest.parquet")
    assert sorted(rejections["reason"]) == ["bad_url", "http_404"]
    paintings = pd.read_parquet(tmp_path / "storage" / "assets" / "raw_paintings.parquet")
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("rejected" in message and "http_404" in message for message in logged)
    metadata = result.asset_materializations_for_node("raw_paintings")[0].metadata
    assert_no_secret(rejections.to_csv() + paintings.to_csv() + "\n".join(logged) + repr(metadata))


# ----------------------------------------------------------------------------------------------- 11.6


def test_loopback_targets_are_refused_by_default_with_a_reason(tmp_path, server):
    url = server.add("/a.png", Reply(body=PNG, content_type="image/png"))
    for target in (url, url.replace("127.0.0.1", "localhost")):  # a literal, and a name resolving to loopback
        result = downloader(tmp_path, allow_private=False).fetch(target)
        assert (result.status, result.reason) == ("failed", "private_address"), result
        assert "loopback address 127.0.0.1" in result.detail and "allow_private_addresses" in result.detail
    assert server.hits["/a.png"] == 0  # never connected
    assert downloader(tmp_path, allow_private=True).fetch(url).ok  # the explicit setting allows it


@pytest.mark.parametrize(("address", "kind"), [
    ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("172.16.5.4", "private"), ("169.254.169.254", "link-local"),
    ("127.8.8.8", "loopback"), ("::1", "loopback"), ("fe80::1", "link-local"), ("fd00::1", "private"),
    ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"), ("100.64.0.1", "non-global"),
    ("::ffff:10.0.0.1", "private"), ("64:ff9b::7f00:1", "loopback"), ("240.0.0.1", "private"),
])
def test_address_refusal_names_the_range(address, kind):
    assert addresses.address_refusal(address).startswith(kind)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_global_addresses_are_allowed(address):
    assert addresses.address_refusal(address) is None


def test_a_redirect_to_a_private_address_is_refused(tmp_path, server, monkeypatch):
    # Let 127.0.0.1 stand for a public host here; the redirect then points into loopback (127.0.0.2).
    real = addresses.address_refusal
    monkeypatch.setattr(addresses, "address_refusal", lambda a: None if a == "127.0.0.1" else real(a))
    port = server.url("/").rsplit(":", 1)[1].split("/")[0]
    url = server.add("/hop", Reply(302, b"", None, headers={"Location": f"http://127.0.0.2:{port}/meta"}))
    result = downloader(tmp_path, allow_private=False).fetch(url)
    assert (result.reason, server.hits["/hop"]) == ("private_address", 1)
    assert "loopback address 127.0.0.2" in result.detail


def test_the_checked_address_is_the_one_connected_to(tmp_path, server, monkeypatch):
    """One lookup per connection: a rebinding DNS answer after the check is never used."""
    real_refusal, real_lookup = addresses.address_refusal, socket.getaddrinfo
    port = int(server.url("/").rsplit(":", 1)[1].split("/")[0])
    answers = iter(["127.0.0.1", "10.9.9.9", "10.9.9.9"])
    lookups = []

    def rebinding_dns(host, *args, **kwargs):
        if host != "mirror.test":
            return real_lookup(host, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(addresses, "address_refusal", lambda a: None if a == "127.0.0.1" else real_refusal(a))
    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    server.add("/a.png", Reply(body=PNG, content_type="image/png"))
    result = downloader(tmp_path, allow_private=False).fetch(f"http://mirror.test:{port}/a.png")
    assert result.ok, result
    assert lookups == ["mirror.test"]


def test_through_an_environment_proxy_the_target_is_checked_not_the_proxy(tmp_path, server, monkeypatch):
    server.add("/a.png", Reply(body=PNG, content_type="image/png"))  # the fixture server acts as the proxy
    monkeypatch.setenv("http_proxy", server.url(""))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    proxied = downloader(tmp_path / "a", allow_private=False, use_env_proxies=True)
    refused = proxied.fetch("http://10.1.2.3/a.png")
    assert refused.reason == "private_address" and server.hits["/a.png"] == 0
    allowed = proxied.fetch("http://93.184.216.34/a.png")  # a global target through a loopback proxy
    assert allowed.ok and server.hits["/a.png"] == 1
    # Without use_env_proxies (the default) the environment's proxy is not used at all.
    direct = downloader(tmp_path / "b", allow_private=False, timeout_s=0.5).fetch("http://10.1.2.3/a.png")
    assert direct.reason == "private_address" and server.hits["/a.png"] == 1
    assert DownloadPolicy().use_env_proxies is False and DownloadPolicy().allow_private_networks is False
