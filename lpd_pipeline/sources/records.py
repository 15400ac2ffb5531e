"""The record every ingest source produces for one raw painting file.

Rule: what a source knows about where a painting comes from reaches ``paintings.parquet``: ``source_url`` (the
image's address), ``source_page`` (a page about the work, e.g. the Met object page) and ``provenance`` (every
other field the source gave, as a JSON object of strings with sorted keys). Every URL among them is redacted
(:func:`lpd_pipeline.sources.urls.redact_url`) before it is stored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lpd_pipeline.sources.urls import redact_url

# The metadata columns a URL manifest or a folder's metadata.csv may carry (all optional).
METADATA_COLUMNS = ("title", "artist", "date", "medium", "license", "kind")


@dataclass
class RawPainting:
    """One painting file on local disk, with where it came from and what its source said about it."""

    path: Path  # the file on local disk (for downloads: under <storage>/raw/downloads)
    source: str  # "local" | "manifest" | "met"
    source_ref: str  # relative path for local files, URL for downloads, object id for the Met
    title: str = ""
    artist: str = ""
    date: str = ""
    medium: str = ""
    license: str = ""
    kind: str | None = None  # "colored" | "ink" when metadata says so; None means "decide from the image"
    extra: dict = field(default_factory=dict)  # any other field the source knows (provenance)
    source_url: str = ""  # where the image file came from (redacted when stored)
    source_page: str = ""  # a page describing the work (museum object page...)

    def to_row(self) -> dict:
        row = asdict(self)
        row["path"] = str(self.path)
        row.pop("extra")
        row.update(self.provenance_columns())
        return row

    def provenance_columns(self) -> dict[str, str]:
        """``source_url``, ``source_page`` (redacted) and ``provenance`` (JSON of ``extra``) for the tables."""
        return {"source_url": _reported(self.source_url), "source_page": _reported(self.source_page),
                "provenance": provenance_json(self.extra)}


def _reported(value: object) -> str:
    """A value as it may reach a table: text, and redacted when it is a URL."""
    text = "" if value is None else str(value).strip()
    return redact_url(text) if "://" in text else text


def provenance_json(extra: dict) -> str:
    """``extra`` as a JSON object of strings (sorted keys; URLs redacted; empty values left out)."""
    fields = {str(key): _reported(value) for key, value in extra.items()}
    return json.dumps({key: value for key, value in sorted(fields.items()) if value}, ensure_ascii=False)


@dataclass
class SourceFailure:
    """An item a source could not deliver (HTTP error, wrong type, oversize...). Goes to rejections.parquet."""

    item: str  # URL, object id or file path
    stage: str  # e.g. "download", "met_api", "manifest"
    reason: str  # short machine-readable code, e.g. "http_404", "oversize", "wrong_content_type"
    detail: str = ""
