"""The Met Open Access source against a local fake of the collection API (never the internet)."""

from __future__ import annotations

import json

import pytest

from lpd_pipeline.sources.download import Downloader, DownloadPolicy
from lpd_pipeline.sources.manifest import kind_from_medium, normalize_kind
from lpd_pipeline.sources.met import MET_API_BASE, MET_LICENSE, MetSource
from lpd_pipeline_tests.http_fixtures import FakeClock, FixtureServer, Reply, image_bytes

SEARCH_PATH = "/search?hasImages=true&q=landscape"


def as_json(payload) -> Reply:
    return Reply(body=json.dumps(payload).encode(), content_type="application/json")


def met_object(object_id: int, *, public: bool = True, image: str = "", medium: str = "Ink on paper") -> dict:
    return {
        "objectID": object_id,
        "isPublicDomain": public,
        "primaryImage": image,
        "title": f"Landscape {object_id}",
        "artistDisplayName": "Wang Hui",
        "objectDate": "1680",
        "medium": medium,
        "department": "Asian Art",
        "objectURL": f"https://www.metmuseum.org/art/collection/search/{object_id}",
    }


@pytest.fixture()
def met_server():
    """Objects: 1 coloured PD, 2 not PD, 3 PD without image, 4 missing (404), 5 ink PD, 6 image is HTML."""
    with FixtureServer() as server:
        img = server.url("/img")
        server.add(SEARCH_PATH, as_json({"total": 7, "objectIDs": [1, 2, 3, 4, 5, 6, 1]}))
        colored = met_object(1, image=f"{img}/1.jpg", medium="Hanging scroll; ink and color on silk")
        server.add("/objects/1", as_json(colored))
        server.add("/objects/2", as_json(met_object(2, public=False, image=f"{img}/2.jpg")))
        server.add("/objects/3", as_json(met_object(3, image="")))
        server.add("/objects/4", Reply(404, b'{"message": "ObjectID not found"}', "application/json"))
        server.add("/objects/5", as_json(met_object(5, image=f"{img}/5.jpg", medium="Handscroll; ink on paper")))
        server.add("/objects/6", as_json(met_object(6, image=f"{img}/6.jpg")))
        server.add("/img/1.jpg", Reply(body=image_bytes("JPEG", seed=1), content_type="image/jpeg"))
        server.add("/img/2.jpg", Reply(body=image_bytes("JPEG", seed=2), content_type="image/jpeg"))
        server.add("/img/5.jpg", Reply(body=image_bytes("JPEG", seed=5), content_type="image/jpeg"))
        server.add("/img/6.jpg", Reply(body=b"<html>rate limited</html>", content_type="image/jpeg"))
        yield server


def make_source(dest, server: FixtureServer) -> MetSource:
    clock = FakeClock()
    policy = DownloadPolicy(timeout_s=2.0, retries=1, min_interval_s=0.0, use_env_proxies=False,
                            allow_private_networks=True)
    downloader = Downloader(dest, policy, sleep=clock.sleep, clock=clock.clock)
    return MetSource(downloader, base_url=server.url(""))


def test_default_base_url_is_the_public_api():
    assert MET_API_BASE == "https://collectionapi.metmuseum.org/public/collection/v1"


def test_collect_keeps_public_domain_images_and_records_every_failure(tmp_path, met_server):
    paintings, failures = make_source(tmp_path / "dl", met_server).collect("landscape", limit=10)

    assert [(p.source, p.source_ref, p.kind) for p in paintings] == [("met", "1", "colored"), ("met", "5", "ink")]
    first = paintings[0]
    assert (first.title, first.artist, first.date, first.license) == ("Landscape 1", "Wang Hui", "1680", MET_LICENSE)
    assert first.path.parent == (tmp_path / "dl").resolve() and first.path.suffix == ".jpg"
    assert first.path.read_bytes() == image_bytes("JPEG", seed=1)
    assert first.extra["image_url"].endswith("/img/1.jpg")

    assert sorted((f.item.rsplit("/", 1)[-1], f.stage, f.reason) for f in failures) == [
        ("6.jpg", "download", "wrong_type"),
        ("met:2", "met_filter", "not_public_domain"),
        ("met:3", "met_filter", "no_image"),
        ("met:4", "met_api", "http_404"),
    ]
    assert met_server.hits["/img/2.jpg"] == 0  # non-public-domain images are never downloaded
    assert met_server.hits["/objects/1"] == 1  # the duplicated id in the search answer is looked up once


def test_limit_stops_lookups_early(tmp_path, met_server):
    paintings, failures = make_source(tmp_path, met_server).collect("landscape", limit=1)
    assert [p.source_ref for p in paintings] == ["1"] and failures == []
    assert met_server.hits["/objects/2"] == 0 and met_server.hits["/objects/5"] == 0
    assert make_source(tmp_path, met_server).collect("landscape", limit=0) == ([], [])
    with pytest.raises(ValueError):
        make_source(tmp_path, met_server).collect("landscape", limit=-1)


def test_object_lookups_are_capped_when_few_objects_are_usable(tmp_path, met_server):
    paintings, failures = make_source(tmp_path, met_server).collect("landscape", limit=5, max_objects=3)
    assert [p.source_ref for p in paintings] == ["1"]  # objects 2 and 3 are unusable; 4.. never asked for
    assert met_server.hits["/objects/4"] == 0 and met_server.hits["/objects/5"] == 0
    capped = [f for f in failures if f.reason == "object_cap_reached"]
    assert len(capped) == 1 and "examined 3" in capped[0].detail


def test_rerun_reuses_cached_objects_and_images(tmp_path, met_server):
    dest = tmp_path / "dl"
    first, _ = make_source(dest, met_server).collect("landscape", limit=10)
    before = dict(met_server.hits)
    second, failures = make_source(dest, met_server).collect("landscape", limit=10)
    assert [(p.source_ref, p.path) for p in second] == [(p.source_ref, p.path) for p in first]
    assert all(p.extra["download_status"] == "cached" for p in second)
    after = dict(met_server.hits)
    for path in ("/objects/1", "/objects/2", "/objects/3", "/objects/5", "/img/1.jpg", "/img/5.jpg"):
        assert after[path] == before[path], path
    assert after[SEARCH_PATH] == before[SEARCH_PATH] + 1
    assert len(failures) == 4


def test_search_without_results_and_search_failures(tmp_path):
    with FixtureServer() as server:
        server.add("/search?hasImages=true&q=nothing", as_json({"total": 0, "objectIDs": None}))
        server.add("/search?hasImages=true&q=broken", Reply(500, b"oops", "text/plain"))
        server.add("/search?hasImages=true&q=weird", as_json({"total": 1, "objectIDs": "1,2"}))
        source = make_source(tmp_path, server)
        assert source.collect("nothing", limit=5) == ([], [])
        paintings, failures = source.collect("broken", limit=5)
        assert paintings == [] and [(f.stage, f.reason) for f in failures] == [("met_api", "http_500")]
        assert server.hits["/search?hasImages=true&q=broken"] == 2  # retried once
        paintings, failures = source.collect("weird", limit=5)
        assert paintings == [] and [(f.stage, f.reason) for f in failures] == [("met_api", "bad_response")]


def test_department_filter_is_sent(tmp_path):
    with FixtureServer() as server:
        server.add("/search?departmentId=6&hasImages=true&q=shan+shui", as_json({"total": 0, "objectIDs": []}))
        make_source(tmp_path, server).collect("shan shui", limit=3, department_id=6)
        assert server.hits["/search?departmentId=6&hasImages=true&q=shan+shui"] == 1


@pytest.mark.parametrize(
    "medium, kind",
    [
        ("Hanging scroll; ink and color on silk", "colored"),
        ("Ink and colour on paper", "colored"),
        ("Album leaf; color on silk", "colored"),
        ("Ink and light color on paper", "colored"),
        ("Handscroll; ink on paper", "ink"),
        ("Ink on silk", "ink"),
        ("Album of 12 leaves; ink on paper; ink and color on paper", None),
        ("Oil on canvas", None),
        ("", None),
        (None, None),
    ],
)
def test_kind_from_medium(medium, kind):
    assert kind_from_medium(medium) == kind


def test_normalize_kind():
    assert normalize_kind(" Coloured ") == "colored" and normalize_kind("INK") == "ink" and normalize_kind("") is None
    with pytest.raises(ValueError, match="purple"):
        normalize_kind("purple")
