"""Local folder source: every image file under a root, plus optional sidecars of what is known about them.

``metadata.csv`` in the root: ``file`` (path relative to the root) and optionally title, artist, date, medium,
license, kind; any other column is provenance (``url`` / ``source_url``: the image's address, ``page`` /
``source_page`` / ``object_url``: a page about the work, the rest kept as they are). ``MANIFEST.tsv`` in any
scanned folder (tab-separated, a ``file`` column relative to that folder, e.g. ``../shared/paintings/web``):
every other column is provenance; it never sets metadata or the kind.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath

from lpd_pipeline.imaging import IMAGE_SUFFIXES
from lpd_pipeline.sources.manifest import kind_from_medium, metadata_from_row, open_csv_rows, other_columns
from lpd_pipeline.sources.records import RawPainting, SourceFailure

METADATA_FILE = "metadata.csv"
MANIFEST_TSV = "MANIFEST.tsv"
# Provenance columns that name the image's own address and a page about the work.
URL_COLUMNS = ("url", "source_url")
PAGE_COLUMNS = ("page", "source_page", "object_url")
_STAGE = "local"
_SUFFIXES = frozenset(s.lower() if s.startswith(".") else f".{s.lower()}" for s in IMAGE_SUFFIXES)


def _is_ours_or_hidden(name: str) -> bool:
    # lpd_pipeline.files temp files start with "." (hidden); ".part"/".tmp" cover other tools' partial downloads.
    lower = name.lower()
    return name.startswith(".") or lower.endswith((".part", ".tmp", ".crdownload"))


def _inside(root: Path, path: Path) -> bool:
    resolved = path.resolve(strict=True)  # raises for a dangling link or a loop (caller records it)
    return resolved == root or root in resolved.parents


def _linked_folder_problem(root: Path, link: Path, walked: set[Path]) -> tuple[str, str] | None:
    """Why the symlinked folder ``link`` is not scanned ((reason, detail)), or None to follow it: it must
    resolve inside ``root`` to a folder not scanned already (a real folder of the root, another link's target,
    or an ancestor of the link: a loop)."""
    try:
        real = link.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        return "broken_symlink", f"folder {link}: {exc}"
    if real != root and root not in real.parents:
        return "symlink_outside_root", f"folder {link} -> {real} leaves {root}; not scanned"
    if real in walked:
        return "symlink_repeats_folder", (f"folder {link} -> {real}, which is scanned already (or holds the link); "
                                          "its paintings are not listed twice")
    return None


def _walk_files(root: Path, top: Path, walked: set[Path], links: list[Path], failures: list[SourceFailure],
                onerror) -> list[tuple[str, Path]]:
    """(relative path, path) of the image files under ``top`` without following symlinked folders, which are
    appended to ``links`` instead; every real folder walked is added to ``walked``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=onerror, followlinks=False):
        here = Path(dirpath)
        walked.add(here.resolve())
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        links += [here / name for name in dirnames if (here / name).is_symlink()]
        for name in filenames:
            if _is_ours_or_hidden(name) or Path(name).suffix.lower() not in _SUFFIXES:
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                try:
                    inside = _inside(root, path)
                except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
                    failures.append(SourceFailure(rel, _STAGE, "broken_symlink", f"{path}: {exc}"))
                    continue
                if not inside:
                    failures.append(SourceFailure(rel, _STAGE, "symlink_outside_root", f"{path} -> {path.resolve()}"))
                    continue
            found.append((rel, path))
    return found


def _read_metadata(root: Path, image_rels: set[str]) -> tuple[dict[str, dict], list[SourceFailure]]:
    """Metadata per relative POSIX path from ``<root>/metadata.csv``. Every problem is a failure, never a crash."""
    csv_path = root / METADATA_FILE
    failures: list[SourceFailure] = []
    if not csv_path.is_file():
        return {}, failures
    try:
        header, raw_rows = open_csv_rows(csv_path)
    except (ValueError, csv.Error, OSError) as exc:
        return {}, [SourceFailure(str(csv_path), _STAGE, "bad_metadata_csv", str(exc))]
    if "file" not in header:
        detail = f"missing column 'file' (header: {', '.join(header)})"
        return {}, [SourceFailure(str(csv_path), _STAGE, "bad_metadata_csv", detail)]
    metadata: dict[str, dict] = {}
    for line, raw in raw_rows:
        item = f"{METADATA_FILE}:{line}"
        if raw.get("__extra__"):
            failures.append(SourceFailure(item, _STAGE, "bad_metadata_row", f"line {line}: more cells than columns"))
            continue
        file_cell = (raw.get("file") or "").strip().replace("\\", "/")
        if not file_cell:
            if any((value or "").strip() for value in raw.values() if isinstance(value, str)):
                failures.append(SourceFailure(item, _STAGE, "bad_metadata_row", f"line {line}: empty 'file'"))
            continue
        rel = PurePosixPath(file_cell)
        if rel.is_absolute() or ".." in rel.parts:
            failures.append(
                SourceFailure(item, _STAGE, "bad_metadata_row", f"line {line}: {file_cell!r} is not inside the folder")
            )
            continue
        key = rel.as_posix()
        if key not in image_rels:
            failures.append(
                SourceFailure(item, _STAGE, "metadata_file_missing", f"line {line}: no image file {key!r} in {root}")
            )
            continue
        if key in metadata:
            failures.append(SourceFailure(item, _STAGE, "bad_metadata_row", f"line {line}: {key!r} listed twice"))
            continue
        try:
            metadata[key] = {**metadata_from_row(raw), "extra": other_columns(raw, ("file",))}
        except ValueError as exc:
            failures.append(SourceFailure(item, _STAGE, "bad_metadata_row", f"line {line}: {exc}"))
    return metadata, failures


def scan_local_folder(root: str | os.PathLike) -> tuple[list[RawPainting], list[SourceFailure]]:
    """All images under ``root`` (recursive, sorted by relative path) and the problems met on the way.

    Hidden files/folders and partial-download temp files are skipped. A symlinked file is used only when it
    resolves inside ``root``. A symlinked folder is followed when it resolves inside ``root`` to a folder not
    scanned otherwise (real folders are scanned first, so a painting keeps its real path; no loops, nothing
    listed twice); others are reported (``symlink_outside_root``, ``symlink_repeats_folder``,
    ``broken_symlink``), never skipped silently. Bad or unreadable image files (FIFOs named .jpg included) are
    left to the decoder, which names the reason. Raises when ``root`` is not an existing folder.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise FileNotFoundError(f"image folder not found: {root_path}")
    if not root_path.is_dir():
        raise NotADirectoryError(f"image folder is not a directory: {root_path}")
    root_path = root_path.resolve()
    failures: list[SourceFailure] = []
    candidates: list[tuple[str, Path]] = []

    def unreadable_folder(error: OSError) -> None:
        rel = Path(error.filename).relative_to(root_path).as_posix() if error.filename else "."
        failures.append(SourceFailure(rel, _STAGE, "unreadable_folder", str(error)))

    # Real folders first, then the symlinked folders found on the way (each followed at most once), so a
    # painting is listed under its real folder and a link can neither loop nor list a folder twice.
    walked: set[Path] = set()
    to_walk = [root_path]
    while to_walk:
        top = to_walk.pop(0)
        if top != root_path:
            problem = _linked_folder_problem(root_path, top, walked)
            if problem is not None:
                failures.append(SourceFailure(top.relative_to(root_path).as_posix(), _STAGE, *problem))
                continue
        candidates += _walk_files(root_path, top, walked, to_walk, failures, unreadable_folder)
    candidates.sort(key=lambda pair: pair[0])

    metadata, meta_failures = _read_metadata(root_path, {rel for rel, _ in candidates})
    failures.extend(meta_failures)
    listed, tsv_failures = _read_manifests_tsv(root_path, candidates)
    failures.extend(tsv_failures)
    # Content is not checked here: decoding (lpd_pipeline.imaging.decode_image) is the one place that tells
    # zero-byte, truncated, HTML-named-.jpg and other bad files apart, with a precise reason.
    return [_painting(rel, path, metadata.get(rel), listed.get(rel, {})) for rel, path in candidates], failures


def _painting(rel: str, path: Path, meta: dict | None, listed: dict[str, str]) -> RawPainting:
    """The record of one file: its metadata.csv row (if any) and provenance from both sidecars."""
    meta = meta or {}
    extra = {**listed, **meta.get("extra", {})}
    source_url = next((extra.pop(name) for name in URL_COLUMNS if name in extra), "")
    source_page = next((extra.pop(name) for name in PAGE_COLUMNS if name in extra), "")
    fields = {name: meta.get(name) or "" for name in ("title", "artist", "date", "medium", "license")}
    return RawPainting(path=path, source="local", source_ref=rel, kind=meta.get("kind"), extra=extra,
                       source_url=source_url, source_page=source_page, **fields)


def _read_manifests_tsv(root: Path, candidates: list[tuple[str, Path]]) -> tuple[dict[str, dict], list[SourceFailure]]:
    """Provenance per relative path from the ``MANIFEST.tsv`` of every folder holding a scanned image (a row's
    ``file`` is relative to its manifest's folder). A manifest that is a link, unreadable or has no ``file``
    column is reported; rows naming no scanned image are ignored (a manifest may list more than is here)."""
    wanted = {rel for rel, _ in candidates}
    folders = sorted({PurePosixPath(rel).parent for rel in wanted} | {PurePosixPath(".")})
    listed: dict[str, dict] = {}
    failures: list[SourceFailure] = []
    for folder in folders:
        tsv = root / folder / MANIFEST_TSV
        if not tsv.is_file():
            continue
        item = (folder / MANIFEST_TSV).as_posix()
        if tsv.is_symlink():
            failures.append(SourceFailure(item, _STAGE, "bad_manifest_tsv", "a symlink: not read"))
            continue
        try:
            with open(tsv, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t"))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            failures.append(SourceFailure(item, _STAGE, "bad_manifest_tsv", str(exc)))
            continue
        if rows and "file" not in rows[0]:
            failures.append(SourceFailure(item, _STAGE, "bad_manifest_tsv", "missing column 'file'"))
            continue
        for row in rows:
            key = (folder / (row.get("file") or "").strip()).as_posix()
            if key in wanted:
                listed[key] = other_columns({k: v for k, v in row.items() if k is not None}, ("file",))
    return listed, failures


__all__ = ["METADATA_FILE", "kind_from_medium", "scan_local_folder"]
