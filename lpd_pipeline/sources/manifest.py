"""URL-manifest CSV source, plus the metadata helpers every source shares (kind normalisation, kind from medium).

Manifest CSV columns: ``url`` (required) and optionally title, artist, date, medium, license, kind.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lpd_pipeline.sources.download import Downloader, check_http_url
from lpd_pipeline.sources.records import METADATA_COLUMNS, RawPainting, SourceFailure
from lpd_pipeline.sources.urls import redact_url

_KIND_ALIASES = {
    "colored": "colored",
    "coloured": "colored",
    "color": "colored",
    "colour": "colored",
    "ink": "ink",
}
# "ink and color on silk", "ink and colours on paper", "color on silk", "ink and light color on paper"
_COLORED_MEDIUM = re.compile(r"\bcolou?rs?\s+on\b|\bink\s+and\s+(?:\w+\s+)?colou?rs?\b")
_INK_MEDIUM = re.compile(r"\bink\s+on\b")


def normalize_kind(value: str | None) -> str | None:
    """``"colored"``/``"ink"`` from a metadata cell (British spellings accepted); empty -> None.

    Raises ValueError for any other value, so a typo never silently becomes "decide from the image".
    """
    text = (value or "").strip().lower()
    if not text:
        return None
    if text not in _KIND_ALIASES:
        raise ValueError(f"unknown kind {value!r} (expected 'colored' or 'ink')")
    return _KIND_ALIASES[text]


def kind_from_medium(medium: str | None) -> str | None:
    """Kind implied by a museum medium string, or None when it says nothing (or contradicts itself).

    "Ink and color on silk" / "Color on paper" -> colored; "Ink on paper" -> ink; "Oil on canvas" -> None.
    An album described as both ("ink on paper; ink and color on paper") is ambiguous -> None.
    """
    text = " ".join((medium or "").lower().split())
    colored = bool(_COLORED_MEDIUM.search(text))
    ink = bool(_INK_MEDIUM.search(text))
    if colored and not ink:
        return "colored"
    if ink and not colored:
        return "ink"
    return None


def metadata_from_row(row: dict[str, str | None]) -> dict[str, str | None]:
    """The METADATA_COLUMNS of a CSV row, stripped; ``kind`` normalised (ValueError on a bad kind).

    When the row has no kind, the kind implied by its medium is used.
    """
    meta: dict[str, str | None] = {col: (row.get(col) or "").strip() for col in METADATA_COLUMNS}
    meta["kind"] = normalize_kind(meta["kind"]) or kind_from_medium(meta["medium"])
    return meta


def other_columns(row: dict[str, str | None], known: tuple[str, ...] = ()) -> dict[str, str]:
    """The non-empty cells of a CSV row outside METADATA_COLUMNS and ``known``: provenance a source keeps."""
    skip = {*METADATA_COLUMNS, *known, "__extra__"}
    return {name: value.strip() for name, value in row.items()
            if name not in skip and isinstance(value, str) and value.strip()}


def open_csv_rows(csv_path: Path):
    """(line_number, row) pairs of a UTF-8 CSV (BOM tolerated) plus its header. Raises ValueError when the
    file is not valid UTF-8 or has no header."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{csv_path}: not valid UTF-8 ({exc})") from None
    # io.StringIO with newline="" hands csv exactly the file's lines: str.splitlines would also split at form
    # feeds, \x1c-\x1e, \x85 and U+2028, which may sit inside a title.
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="__extra__")
    if not reader.fieldnames:
        raise ValueError(f"{csv_path}: empty file or missing header row")
    header = [name.strip().lower() for name in reader.fieldnames]
    reader.fieldnames = header
    rows = []
    for row in reader:
        rows.append((reader.line_num, row))
    return header, rows


@dataclass(frozen=True)
class ManifestRow:
    url: str
    line: int
    title: str = ""
    artist: str = ""
    date: str = ""
    medium: str = ""
    license: str = ""
    kind: str | None = None
    extra: dict = field(default_factory=dict, hash=False)  # the row's other columns (provenance)


def read_url_manifest(csv_path: str | os.PathLike) -> tuple[list[ManifestRow], list[SourceFailure]]:
    """Parse a URL manifest. A missing file or missing ``url`` column raises; a bad row becomes a failure
    naming its line (bad URL, bad kind, extra cells, duplicate URL) and the other rows still count."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"URL manifest not found: {csv_path}")
    try:
        header, raw_rows = open_csv_rows(csv_path)
    except csv.Error as exc:
        raise ValueError(f"{csv_path}: unreadable CSV ({exc})") from None
    if "url" not in header:
        raise ValueError(f"{csv_path}: missing required column 'url' (header: {', '.join(header)})")
    rows: list[ManifestRow] = []
    failures: list[SourceFailure] = []
    seen: dict[str, int] = {}
    for line, raw in raw_rows:
        item = f"{csv_path.name}:{line}"
        if raw.get("__extra__"):
            detail = f"more cells than header columns on line {line}"
            failures.append(SourceFailure(item, "manifest", "bad_row", detail))
            continue
        url = (raw.get("url") or "").strip()
        if not url:
            if any((value or "").strip() for value in raw.values()):
                failures.append(SourceFailure(item, "manifest", "missing_url", f"line {line} has no url"))
            continue
        problem = check_http_url(url)
        if problem:
            detail = f"line {line}: {problem}: {redact_url(url)!r}"
            failures.append(SourceFailure(item, "manifest", "bad_url", detail))
            continue
        try:
            meta = metadata_from_row(raw)
        except ValueError as exc:
            failures.append(SourceFailure(item, "manifest", "bad_kind", f"line {line}: {exc}"))
            continue
        if url in seen:
            failures.append(
                SourceFailure(item, "manifest", "duplicate_url", f"line {line} repeats the URL of line {seen[url]}")
            )
            continue
        seen[url] = line
        rows.append(ManifestRow(url=url, line=line, extra=other_columns(raw, ("url",)), **meta))  # type: ignore[arg-type]
    return rows, failures


def collect_from_manifest(
    csv_path: str | os.PathLike, downloader: Downloader
) -> tuple[list[RawPainting], list[SourceFailure]]:
    """Download every image a URL manifest lists; each failed row or URL is a failure, the rest go on."""
    rows, failures = read_url_manifest(csv_path)
    paintings: list[RawPainting] = []
    try:
        for row in rows:
            result = downloader.fetch(row.url)
            if not result.ok:
                failures.append(result.to_failure("download"))
                continue
            paintings.append(
                RawPainting(
                    path=result.path,  # type: ignore[arg-type]
                    source="manifest",
                    source_ref=redact_url(row.url),  # a table column: never a token or password
                    title=row.title,
                    artist=row.artist,
                    date=row.date,
                    medium=row.medium,
                    license=row.license,
                    kind=row.kind,
                    extra={**row.extra, "sha256": result.sha256, "download_status": result.status,
                           "manifest_line": row.line},
                    source_url=row.url,  # redacted when it reaches a table (RawPainting.provenance_columns)
                )
            )
    finally:
        downloader.flush_index()
    return paintings, failures
