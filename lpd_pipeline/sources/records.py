"""The record every ingest source produces for one raw painting file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    extra: dict = field(default_factory=dict)

    def to_row(self) -> dict:
        row = asdict(self)
        row["path"] = str(self.path)
        row.pop("extra")
        return row


@dataclass
class SourceFailure:
    """An item a source could not deliver (HTTP error, wrong type, oversize...). Goes to rejections.parquet."""

    item: str  # URL, object id or file path
    stage: str  # e.g. "download", "met_api", "manifest"
    reason: str  # short machine-readable code, e.g. "http_404", "oversize", "wrong_content_type"
    detail: str = ""
