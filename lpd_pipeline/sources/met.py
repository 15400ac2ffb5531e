"""The Metropolitan Museum of Art Open Access API (keyless) as a painting source.

Only public-domain objects with a primary image are kept; their images are CC0. Object records are cached as
JSON beside the downloads, so a re-run asks the API only for the search.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from lpd_pipeline.files import read_json_object, write_text_atomic
from lpd_pipeline.settings import safe_join
from lpd_pipeline.sources.download import Downloader, DownloadError
from lpd_pipeline.sources.manifest import kind_from_medium
from lpd_pipeline.sources.records import RawPainting, SourceFailure
from lpd_pipeline.sources.urls import redact_url

MET_API_BASE = "https://collectionapi.metmuseum.org/public/collection/v1"
MET_LICENSE = "CC0-1.0 (Met Open Access, public domain)"


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    return value.strip() if isinstance(value, str) else ""


class MetSource:
    """Search the Met collection and download the public-domain primary images of the hits."""

    def __init__(
        self, downloader: Downloader, base_url: str = MET_API_BASE, *, cache_objects: bool = True
    ) -> None:
        self.downloader = downloader
        self.base_url = base_url.rstrip("/")
        self.object_cache_dir: Path | None = downloader.dest_dir / "met_objects" if cache_objects else None

    def search(self, query: str, *, department_id: int | None = None) -> list[int]:
        """Object ids matching ``query`` among objects with images. Raises DownloadError / ValueError."""
        params: dict[str, Any] = {"hasImages": "true", "q": query}
        if department_id is not None:
            params = {"departmentId": int(department_id), **params}
        url = f"{self.base_url}/search?{urllib.parse.urlencode(params)}"
        payload = self.downloader.fetch_json(url)
        if not isinstance(payload, dict):
            raise ValueError(f"{redact_url(url)}: search answer is {type(payload).__name__}, expected an object")
        ids = payload.get("objectIDs")
        if ids is None:  # the API answers null when nothing matches
            return []
        if not isinstance(ids, list):
            raise ValueError(f"{redact_url(url)}: 'objectIDs' is {type(ids).__name__}, expected a list")
        seen: set[int] = set()
        unique: list[int] = []
        for value in ids:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0 and value not in seen:
                seen.add(value)
                unique.append(value)
        return unique

    def _cache_path(self, object_id: int) -> Path | None:
        if self.object_cache_dir is None:
            return None
        return safe_join(self.object_cache_dir, f"{object_id}.json")

    def get_object(self, object_id: int) -> dict:
        """One object record (from the cache when present). Raises DownloadError / ValueError."""
        cache_path = self._cache_path(object_id)
        if cache_path is not None:
            cached = read_json_object(cache_path)  # a missing or damaged entry is simply fetched again
            if cached:
                return cached
        url = f"{self.base_url}/objects/{int(object_id)}"
        record = self.downloader.fetch_json(url)
        if not isinstance(record, dict):
            raise ValueError(f"{redact_url(url)}: object answer is {type(record).__name__}, expected an object")
        if cache_path is not None:
            write_text_atomic(cache_path, json.dumps(record, ensure_ascii=False))
        return record

    def collect(
        self, query: str, *, limit: int, department_id: int | None = None, max_objects: int | None = None
    ) -> tuple[list[RawPainting], list[SourceFailure]]:
        """Up to ``limit`` public-domain paintings for ``query``. Each unusable object is recorded as a failure
        (not public domain, no image, API or download error) and the run goes on.

        At most ``max_objects`` object records are requested (default ``20 * limit``): a broad query with few
        public-domain images must not turn into hundreds of thousands of API calls."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        max_objects = 20 * limit if max_objects is None else max_objects
        paintings: list[RawPainting] = []
        failures: list[SourceFailure] = []
        if limit == 0:
            return paintings, failures
        try:
            object_ids = self.search(query, department_id=department_id)
        except DownloadError as exc:
            return paintings, [SourceFailure(redact_url(exc.url), "met_api", exc.reason, exc.detail)]
        except ValueError as exc:
            return paintings, [SourceFailure(f"met:search:{query}", "met_api", "bad_response", str(exc))]
        examined = 0
        try:
            for object_id in object_ids:
                if len(paintings) >= limit:
                    break
                if examined >= max_objects:
                    failures.append(SourceFailure(
                        f"met:search:{query}", "met_filter", "object_cap_reached",
                        f"examined {examined} of {len(object_ids)} objects and found {len(paintings)} usable "
                        f"paintings (limit {limit}); raise the object cap to look further"))
                    break
                examined += 1
                painting, failure = self._collect_one(object_id)
                if painting is not None:
                    paintings.append(painting)
                if failure is not None:
                    failures.append(failure)
        finally:
            self.downloader.flush_index()
        return paintings, failures

    def _collect_one(self, object_id: int) -> tuple[RawPainting | None, SourceFailure | None]:
        item = f"met:{object_id}"
        try:
            record = self.get_object(object_id)
        except DownloadError as exc:
            return None, SourceFailure(item, "met_api", exc.reason, exc.detail)
        except ValueError as exc:
            return None, SourceFailure(item, "met_api", "bad_response", str(exc))
        if record.get("isPublicDomain") is not True:
            return None, SourceFailure(item, "met_filter", "not_public_domain", _text(record, "title"))
        image_url = _text(record, "primaryImage")
        if not image_url:
            return None, SourceFailure(item, "met_filter", "no_image", _text(record, "title"))
        result = self.downloader.fetch(image_url, name_hint=f"met_{object_id}")
        if not result.ok:
            return None, SourceFailure(redact_url(image_url), "download", result.reason, f"{item}: {result.detail}")
        medium = _text(record, "medium")
        painting = RawPainting(
            path=result.path,  # type: ignore[arg-type]
            source="met",
            source_ref=str(object_id),
            title=_text(record, "title"),
            artist=_text(record, "artistDisplayName"),
            date=_text(record, "objectDate"),
            medium=medium,
            license=MET_LICENSE,
            kind=kind_from_medium(medium),
            source_url=image_url,  # redacted when it reaches a table (RawPainting.provenance_columns)
            source_page=_text(record, "objectURL"),
            extra={
                "object_id": str(object_id),
                "image_url": redact_url(image_url),  # kept for people to read: never a token
                "object_url": _text(record, "objectURL"),
                "department": _text(record, "department"),
                "classification": _text(record, "classification"),
                "culture": _text(record, "culture"),
                "sha256": result.sha256,
                "download_status": result.status,
            },
        )
        return painting, None
