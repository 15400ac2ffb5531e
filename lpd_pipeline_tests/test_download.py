"""The shared downloader and the URL-manifest source, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.request

import pytest

from lpd_pipeline.sources.download import INDEX_NAME, Downloader, DownloadError, DownloadPolicy, safe_stem
from lpd_pipeline.sources.manifest import collect_from_manifest, read_url_manifest
from lpd_pipeline_tests.http_fixtures import OMIT, FakeClock, FixtureServer, Reply, image_bytes

PNG = image_bytes("PNG", seed=1)
JPEG = image_bytes("JPEG", seed=2)
HTML = b"<!DOCTYPE html><html><body>Access denied</body></html>"


@pytest.fixture()
def server():
    with FixtureServer() as running:
        yield running


@pytest.fixture()
def fake_clock() -> FakeClock:
    return FakeClock()


def make_downloader(dest, fake_clock: FakeClock, **overrides) -> Downloader:
    settings = dict(
        timeout_s=2.0, retries=2, backoff_s=1.0, backoff_cap_s=30.0, min_interval_s=0.0, max_bytes=100_000,
        use_env_proxies=False, allow_private_networks=True,  # the fixture server is on 127.0.0.1
    )
    settings.update(overrides)
    return Downloader(dest, DownloadPolicy(**settings), sleep=fake_clock.sleep, clock=fake_clock.clock)


def files_in(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def test_downloads_image_with_hash_named_file_and_index(tmp_path, server, fake_clock):
    url = server.add("/art/Mountain%20View.png", Reply(body=PNG, content_type="image/png"))
    dest = tmp_path / "dl"
    with make_downloader(dest, fake_clock) as downloader:
        result = downloader.fetch(url)
    assert result.status == "downloaded" and result.ok
    assert result.path.parent == dest.resolve()
    assert result.path.suffix == ".png" and "Mountain_View" in result.path.name
    assert result.path.read_bytes() == PNG
    assert result.bytes == len(PNG) and result.sha256 == hashlib.sha256(PNG).hexdigest()
    index = json.loads((dest / INDEX_NAME).read_text())["entries"]
    assert index[url] == {"file": result.path.name, "bytes": len(PNG), "sha256": result.sha256, "type": "png"}
    assert files_in(dest) == sorted([INDEX_NAME, result.path.name])  # no temp files left behind


def test_octet_stream_jpeg_gets_jpg_suffix(tmp_path, server, fake_clock):
    url = server.add("/blob", Reply(body=JPEG, content_type="application/octet-stream"))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert result.status == "downloaded" and result.path.suffix == ".jpg" and result.image_type == "jpeg"


def test_404_is_not_retried(tmp_path, server, fake_clock):
    url = server.add("/missing.png", Reply(404, b"nope", "text/plain"))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert (result.status, result.reason, result.path) == ("failed", "http_404", None)
    assert server.hits["/missing.png"] == 1 and fake_clock.sleeps == []


def test_500_then_200_is_retried_after_backoff(tmp_path, server, fake_clock):
    url = server.add("/flaky.png", Reply(500, b"oops", "text/plain"), Reply(body=PNG, content_type="image/png"))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert result.status == "downloaded"
    assert server.hits["/flaky.png"] == 2 and fake_clock.sleeps == [1.0]


def test_persistent_503_backs_off_exponentially_with_cap(tmp_path, server, fake_clock):
    url = server.add("/down.png", Reply(503, b"busy", "text/plain"))
    result = make_downloader(tmp_path, fake_clock, retries=3, backoff_cap_s=3.0).fetch(url)
    assert (result.status, result.reason) == ("failed", "http_503")
    assert "4 attempt" in result.detail
    assert server.hits["/down.png"] == 4 and fake_clock.sleeps == [1.0, 2.0, 3.0]


def test_429_honours_retry_after(tmp_path, server, fake_clock):
    url = server.add(
        "/busy.png",
        Reply(429, b"slow down", "text/plain", headers={"Retry-After": "7"}),
        Reply(body=PNG, content_type="image/png"),
    )
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert result.status == "downloaded" and fake_clock.sleeps == [7.0] and server.hits["/busy.png"] == 2


def test_slow_response_times_out_and_is_retried(tmp_path, server):
    url = server.add("/slow.png", Reply(body=PNG, content_type="image/png", delay_s=0.8))
    downloader = Downloader(
        tmp_path,
        DownloadPolicy(timeout_s=0.2, retries=1, backoff_s=0.01, min_interval_s=0, use_env_proxies=False,
                       allow_private_networks=True),
    )
    started = time.monotonic()
    result = downloader.fetch(url)
    assert (result.status, result.reason) == ("failed", "timeout")
    assert server.hits["/slow.png"] == 2
    assert time.monotonic() - started < 2.0
    assert files_in(tmp_path) == []


def test_deadline_bounds_total_time_across_retries(tmp_path, server, fake_clock):
    url = server.add("/down.png", Reply(500, b"x", "text/plain"))
    result = make_downloader(tmp_path, fake_clock, retries=10, backoff_s=10.0, deadline_s=15.0).fetch(url)
    assert (result.status, result.reason) == ("failed", "http_500")
    assert server.hits["/down.png"] == 2 and fake_clock.sleeps == [10.0]  # the next 20 s wait would pass 15 s


def test_wrong_content_type_is_rejected(tmp_path, server, fake_clock):
    url = server.add("/page.png", Reply(body=PNG, content_type="text/html; charset=utf-8"))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert (result.status, result.reason) == ("failed", "wrong_content_type")
    assert server.hits["/page.png"] == 1 and files_in(tmp_path) == []


def test_html_served_as_jpeg_fails_magic_byte_check(tmp_path, server, fake_clock):
    url = server.add("/fake.jpg", Reply(body=HTML, content_type="image/jpeg"))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert (result.status, result.reason) == ("failed", "wrong_type")
    # The kind of body is named; its content (which may echo a token) is never copied into the report.
    assert "HTML document" in result.detail
    assert "DOCTYPE" not in result.detail and "Access denied" not in result.detail
    assert server.hits["/fake.jpg"] == 1 and files_in(tmp_path) == []


def test_disallowed_image_type_is_rejected(tmp_path, server, fake_clock):
    url = server.add("/anim.gif", Reply(body=image_bytes("GIF"), content_type="image/gif"))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert (result.status, result.reason) == ("failed", "wrong_type") and "gif" in result.detail


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=PNG + bytes(200_000), content_type="image/png"),  # honest Content-Length
        Reply(body=PNG + bytes(200_000), content_type="image/png", chunked=True),  # no length: chunked
        Reply(body=PNG + bytes(200_000), content_type="image/png", content_length=OMIT),  # no length: until close
        Reply(body=PNG + bytes(200_000), content_type="image/png", content_length=1000),  # lying length
    ],
    ids=["content-length", "chunked", "read-to-close", "lying-length"],
)
def test_oversize_is_rejected_without_leaving_a_file(tmp_path, server, fake_clock, reply):
    url = server.add("/huge.png", reply)
    result = make_downloader(tmp_path, fake_clock, max_bytes=100_000).fetch(url)
    if reply.content_length == 1000:
        # A body longer than its declared length is cut at the declared length by http.client: the file is
        # complete per the headers and small, so it is accepted; the size cap is never exceeded.
        assert result.status == "downloaded" and result.bytes == 1000
        return
    assert (result.status, result.reason) == ("failed", "oversize")
    if reply.content_length is None and not reply.chunked:
        assert "Content-Length" in result.detail  # refused from the header, before reading the body
    assert server.hits["/huge.png"] == 1  # oversize is final, not retried
    assert files_in(tmp_path) == []


def test_redirect_is_followed_and_keyed_by_original_url(tmp_path, server, fake_clock):
    server.add("/real.png", Reply(body=PNG, content_type="image/png"))
    url = server.add("/moved", Reply(302, b"", None, headers={"Location": "/real.png"}))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert result.status == "downloaded" and result.url == url and "moved" in result.path.name
    assert server.hits["/moved"] == 1 and server.hits["/real.png"] == 1


def test_redirect_to_non_http_scheme_is_refused(tmp_path, server, fake_clock):
    url = server.add("/sneaky", Reply(302, b"", None, headers={"Location": "ftp://127.0.0.1:1/secret.png"}))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert (result.status, result.reason) == ("failed", "http_302")
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "javascript:alert(1)", "http:///nohost.png", "a.png",
            "http://user:secret@127.0.0.1/a.png", "http://127.0.0.1:abc/a.png", "http://127.0.0.1:99999/a.png"]
)
def test_non_http_urls_are_refused_without_a_request(tmp_path, server, fake_clock, url):
    downloader = make_downloader(tmp_path, fake_clock)
    result = downloader.fetch(url)
    assert (result.status, result.reason) == ("failed", "bad_url")
    assert downloader.request_count == 0 and server.total_hits == 0
    with pytest.raises(DownloadError) as excinfo:
        downloader.fetch_json(url)
    assert excinfo.value.reason == "bad_url"


def test_resume_makes_zero_requests_for_files_already_downloaded(tmp_path, server, fake_clock):
    urls = [
        server.add(f"/p{i}.png", Reply(body=image_bytes("PNG", seed=i), content_type="image/png")) for i in range(3)
    ]
    dest = tmp_path / "dl"
    with make_downloader(dest, fake_clock) as first:
        first_results = [first.fetch(url) for url in urls]
    assert [r.status for r in first_results] == ["downloaded"] * 3
    hits_after_first = server.total_hits

    with make_downloader(dest, fake_clock) as second:
        second_results = [second.fetch(url) for url in urls]
    assert [r.status for r in second_results] == ["cached"] * 3
    assert server.total_hits == hits_after_first and second.request_count == 0
    assert [(r.path, r.sha256) for r in second_results] == [(r.path, r.sha256) for r in first_results]

    # A lost index (killed before the flush) is recovered from the URL-hash file names, still without requests.
    (dest / INDEX_NAME).unlink()
    third = make_downloader(dest, fake_clock)
    assert [third.fetch(url).status for url in urls] == ["cached"] * 3
    assert server.total_hits == hits_after_first

    # A cached file that vanished is downloaded again; the others stay cached.
    first_results[0].path.unlink()
    fourth = make_downloader(dest, fake_clock)
    assert [fourth.fetch(url).status for url in urls] == ["downloaded", "cached", "cached"]
    assert server.total_hits == hits_after_first + 1


def test_cached_file_with_wrong_size_is_downloaded_again(tmp_path, server, fake_clock):
    url = server.add("/p.png", Reply(body=PNG, content_type="image/png"))
    with make_downloader(tmp_path, fake_clock) as first:
        path = first.fetch(url).path
    path.write_bytes(PNG[:10])  # damaged by something else
    second = make_downloader(tmp_path, fake_clock)
    result = second.fetch(url)
    assert result.status == "downloaded" and path.read_bytes() == PNG and server.hits["/p.png"] == 2


def test_tampered_index_cannot_point_outside_dest(tmp_path, server, fake_clock):
    url = server.add("/p.png", Reply(body=PNG, content_type="image/png"))
    dest = tmp_path / "dl"
    dest.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)
    entry = {"file": "../secret.png", "bytes": len(PNG), "sha256": "x", "type": "png"}
    (dest / INDEX_NAME).write_text(json.dumps({"version": 1, "entries": {url: entry}}))
    result = make_downloader(dest, fake_clock).fetch(url)
    assert result.status == "downloaded" and result.path.parent == dest.resolve()


@pytest.mark.parametrize(
    "path, name_hint",
    [
        ("/../../etc/passwd", None),
        ("/img/..%2F..%2F..%2Fescape.png", None),
        ("/img/%2E%2E%5C%2E%2E%5Cwin.png", None),
        ("/plain.png", "../../etc/evil"),
        ("/plain2.png", "/abs/olute"),
        ("/dots", ".."),
    ],
)
def test_malicious_names_stay_inside_dest_dir(tmp_path, server, fake_clock, path, name_hint):
    dest = tmp_path / "a" / "b" / "dl"
    hostile_header = {"Content-Disposition": 'attachment; filename="../../x.png"'}  # must be ignored
    url = server.add(path, Reply(body=PNG, content_type="image/png", headers=hostile_header))
    result = make_downloader(dest, fake_clock).fetch(url, name_hint=name_hint)
    assert result.status == "downloaded", result
    assert result.path.parent == dest.resolve() and not result.path.name.startswith(".")
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [f"a/b/dl/{result.path.name}"]


def test_safe_stem_examples():
    assert safe_stem("/x/y/Ink%20Landscape.JPG") == "Ink_Landscape"
    assert safe_stem("..%2F..%2Fetc%2Fpasswd") == "passwd"
    assert safe_stem("") == safe_stem("..") == safe_stem("/") == "file"


class _InterruptingResponse:
    """Wraps a real response and raises mid-stream, like a process being killed while writing."""

    def __init__(self, inner, fail_on_read: int) -> None:
        self.inner, self.headers, self.reads, self.fail_on_read = inner, inner.headers, 0, fail_on_read

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if self.reads >= self.fail_on_read:
            raise KeyboardInterrupt("simulated kill")
        return self.inner.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.inner.close()


class _InterruptingOpener:
    def __init__(self, fail_on_read: int) -> None:
        self.inner = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.fail_on_read = fail_on_read

    def open(self, request, timeout):
        return _InterruptingResponse(self.inner.open(request, timeout=timeout), self.fail_on_read)


def test_killed_download_leaves_no_partial_file(tmp_path, server, fake_clock):
    big = PNG + os.urandom(300_000)
    url = server.add("/big.png", Reply(body=big, content_type="image/png"))
    downloader = Downloader(
        tmp_path, DownloadPolicy(min_interval_s=0), sleep=fake_clock.sleep, clock=fake_clock.clock,
        opener=_InterruptingOpener(fail_on_read=3),  # head read, one 64 KiB chunk written, then killed
    )
    with pytest.raises(KeyboardInterrupt):
        downloader.fetch(url)
    assert list(tmp_path.iterdir()) == []

    # The next run downloads the whole file and it is byte-exact.
    result = make_downloader(tmp_path, fake_clock, max_bytes=10_000_000).fetch(url)
    assert result.status == "downloaded" and result.path.read_bytes() == big


def test_truncated_body_is_retried_and_never_kept(tmp_path, server, fake_clock):
    body = PNG + bytes(50_000)
    url = server.add("/cut.png", Reply(body=body, content_type="image/png", truncate_at=20_000))
    result = make_downloader(tmp_path, fake_clock).fetch(url)
    assert (result.status, result.reason) == ("failed", "connection_error")
    assert server.hits["/cut.png"] == 3 and files_in(tmp_path) == []


def test_stale_temp_files_are_removed_fresh_ones_kept(tmp_path, fake_clock):
    stale = tmp_path / ".abc_x.k2j3.tmp.png"
    fresh = tmp_path / ".abc_y.p9q8.tmp.png"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"in progress")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    make_downloader(tmp_path, fake_clock)
    assert not stale.exists() and fresh.exists()


def test_polite_rate_limit_per_host(tmp_path, server, fake_clock):
    urls = [
        server.add(f"/r{i}.png", Reply(body=image_bytes("PNG", seed=i), content_type="image/png")) for i in range(3)
    ]
    downloader = make_downloader(tmp_path, fake_clock, min_interval_s=1.5)
    assert [downloader.fetch(url).status for url in urls] == ["downloaded"] * 3
    assert fake_clock.sleeps == pytest.approx([1.5, 1.5])


def test_fetch_json_ok_oversize_bad_and_404(tmp_path, server, fake_clock):
    downloader = make_downloader(tmp_path, fake_clock, max_json_bytes=1000)
    ok = server.add("/ok.json", Reply(body=b'{"total": 2, "objectIDs": [1, 2]}', content_type="application/json"))
    assert downloader.fetch_json(ok) == {"total": 2, "objectIDs": [1, 2]}
    cases = {
        "/big.json": (Reply(body=b"[" + b"1," * 1000 + b"1]", content_type="application/json"), "oversize"),
        "/big-chunked.json": (Reply(body=b"[" + b"1," * 1000 + b"1]", chunked=True), "oversize"),
        "/bad.json": (Reply(body=b"<html>", content_type="application/json"), "bad_json"),
        "/gone.json": (Reply(404, b"{}", "application/json"), "http_404"),
    }
    for path, (reply, reason) in cases.items():
        with pytest.raises(DownloadError) as excinfo:
            downloader.fetch_json(server.add(path, reply))
        assert excinfo.value.reason == reason, path
    assert server.hits["/gone.json"] == 1


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        DownloadPolicy(timeout_s=0)
    with pytest.raises(ValueError):
        DownloadPolicy(allowed_types=("jpeg", "svg"))


# --------------------------------------------------------------------------------------------- URL manifest
def test_read_url_manifest_reports_bad_rows_with_line_numbers(tmp_path):
    manifest = tmp_path / "urls.csv"
    manifest.write_text(
        "url,title,kind,medium\n"
        "http://example.invalid/a.jpg,A,colored,\n"
        "ftp://example.invalid/b.jpg,B,,\n"
        "http://example.invalid/c.jpg,C,purple,\n"
        "http://example.invalid/a.jpg,A again,,\n"
        ",orphan title,,\n"
        "http://example.invalid/d.jpg,D,,Ink on paper\n"
        "http://example.invalid/e.jpg,E,ink,x,extra-cell\n",
        encoding="utf-8",
    )
    rows, failures = read_url_manifest(manifest)
    assert [(r.url.rsplit("/", 1)[-1], r.line, r.kind) for r in rows] == [("a.jpg", 2, "colored"), ("d.jpg", 7, "ink")]
    assert [(f.item, f.reason) for f in failures] == [
        ("urls.csv:3", "bad_url"),
        ("urls.csv:4", "bad_kind"),
        ("urls.csv:5", "duplicate_url"),
        ("urls.csv:6", "missing_url"),
        ("urls.csv:8", "bad_row"),
    ]


def test_read_url_manifest_whole_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_url_manifest(tmp_path / "nope.csv")
    no_url = tmp_path / "no_url.csv"
    no_url.write_text("link,title\nhttp://x/a.jpg,A\n")
    with pytest.raises(ValueError, match="no_url.csv.*'url'"):
        read_url_manifest(no_url)


def test_collect_from_manifest_downloads_and_records_failures(tmp_path, server, fake_clock):
    good = server.add("/good.png", Reply(body=PNG, content_type="image/png"))
    bad = server.add("/bad.jpg", Reply(body=HTML, content_type="image/jpeg"))
    missing = server.url("/missing.png")
    manifest = tmp_path / "urls.csv"
    manifest.write_text(
        "\ufeffURL,Title,Artist,Medium\n"
        f"{good},Autumn,Wang,Ink and color on silk\n{bad},Fake,,\n{missing},Gone,,\n",
        encoding="utf-8",
    )
    downloader = make_downloader(tmp_path / "dl", fake_clock)
    paintings, failures = collect_from_manifest(manifest, downloader)
    assert len(paintings) == 1
    painting = paintings[0]
    assert (painting.source, painting.source_ref, painting.title, painting.artist, painting.kind) == (
        "manifest", good, "Autumn", "Wang", "colored"
    )
    assert painting.path.read_bytes() == PNG
    assert sorted((f.item, f.stage, f.reason) for f in failures) == sorted(
        [(bad, "download", "wrong_type"), (missing, "download", "http_404")]
    )
    assert good in json.loads((tmp_path / "dl" / INDEX_NAME).read_text())["entries"]


def test_non_ascii_urls_are_percent_encoded_and_keyed_by_the_original(tmp_path, server, fake_clock):
    server.add("/%E5%B1%B1%E6%B0%B4/%E6%98%A5.png", Reply(body=PNG, content_type="image/png"))
    url = server.url("/山水/春.png")
    with make_downloader(tmp_path / "dl", fake_clock) as downloader:
        result = downloader.fetch(url)
    assert result.status == "downloaded", result
    assert result.path.read_bytes() == PNG and result.url == url


def test_a_server_dripping_bytes_cannot_hold_a_download_past_its_deadline(tmp_path, server):
    url = server.add("/drip.png", Reply(body=PNG + b"x" * 400, content_type="image/png", drip_s=0.02))
    policy = DownloadPolicy(timeout_s=0.5, deadline_s=1.0, retries=0, min_interval_s=0.0, use_env_proxies=False,
                            allow_private_networks=True)
    started = time.monotonic()
    result = Downloader(tmp_path / "dl", policy).fetch(url)  # 400+ bytes at 50 bytes/s: ~9 s if unbounded
    assert (result.status, result.reason) == ("failed", "deadline")
    assert time.monotonic() - started < 3.0
    assert not list((tmp_path / "dl").glob("*.png"))


def test_absurdly_nested_json_is_a_bad_json_failure(tmp_path, server, fake_clock):
    url = server.add("/deep.json", Reply(body=b"[" * 200_000 + b"]" * 200_000, content_type="application/json"))
    downloader = make_downloader(tmp_path, fake_clock, max_json_bytes=1_000_000)
    with pytest.raises(DownloadError) as excinfo:
        downloader.fetch_json(url)
    assert excinfo.value.reason == "bad_json"


def test_ascii_urls_pass_through_unchanged_including_ipv6_literals():
    from lpd_pipeline.sources.download import _ascii_url

    for url in ("http://[::1]:8080/a.jpg", "https://[2001:db8::1]/a%20b.jpg?x=[1]", "http://example.org/a.jpg"):
        assert _ascii_url(url) == url
    assert _ascii_url("http://example.org/山水.jpg") == "http://example.org/%E5%B1%B1%E6%B0%B4.jpg"
