"""Contact sheets of tiles, so a person can see what was kept and why something was dropped.

Rule: a preview names what it shows by painting title, never by hash. Captions drawn into the picture are ASCII
(OpenCV's fonts have no CJK glyphs), so a title that is not ASCII is drawn as its number and spelled out in the
markdown legend under the picture (escaped like every text from outside).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd

from lpd_pipeline import imaging

BACKGROUND = (40, 40, 40)


def caption_chars(width: int) -> int:
    """How many caption characters fit under a cell ``width`` pixels wide (Hershey simplex at 0.35: ~6 px)."""
    return max(4, (width - 4) // 6)


def _caption(sheet: np.ndarray, text: str, left: int, top: int, width: int) -> None:
    """Draw ``text`` (cut to what fits ``width`` pixels) on the caption strip whose top left is (left, top)."""
    cv2.putText(sheet, text[:caption_chars(width)], (left + 3, top + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                (235, 235, 235), 1, cv2.LINE_AA)


def contact_sheet(
    images: Sequence[np.ndarray], captions: Sequence[str], *, thumb: int = 128, columns: int = 8
) -> np.ndarray:
    """Arrange RGB (or gray) images in a grid of ``thumb``-pixel cells with a caption strip under each."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    columns = max(1, min(columns, len(images) or 1))
    rows = max(1, -(-len(images) // columns))
    caption_height = 16
    cell_h = thumb + caption_height
    sheet = np.full((rows * cell_h, columns * thumb, 3), BACKGROUND, dtype=np.uint8)
    for index, (image, caption) in enumerate(zip(images, captions)):
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        cell = cv2.resize(image, (thumb, thumb), interpolation=cv2.INTER_AREA)
        top, left = (index // columns) * cell_h, (index % columns) * thumb
        sheet[top:top + thumb, left:left + thumb] = cell
        _caption(sheet, caption, left, top + thumb, thumb)
    return sheet


def pair_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray]], captions: Sequence[str], *, thumb: int = 96,
               columns: int = 4) -> np.ndarray:
    """Gray | colour pairs side by side, ``columns`` pairs a row, each captioned (the cells of contact_sheet)."""
    if len(pairs) != len(captions):
        raise ValueError(f"{len(pairs)} pairs but {len(captions)} captions")
    gap = np.full((thumb, 2, 3), BACKGROUND, dtype=np.uint8)
    cells = []
    for gray, colour in pairs:
        halves = [cv2.resize(_rgb(image), (thumb, thumb), interpolation=cv2.INTER_AREA) for image in (gray, colour)]
        cells.append(np.hstack([halves[0], gap, halves[1]]))
    columns = max(1, min(columns, len(cells) or 1))
    rows = max(1, -(-len(cells) // columns))
    caption_height, cell_w = 16, 2 * thumb + gap.shape[1]
    sheet = np.full((rows * (thumb + caption_height), columns * (cell_w + 6), 3), BACKGROUND, dtype=np.uint8)
    for index, (cell, caption) in enumerate(zip(cells, captions)):
        top, left = (index // columns) * (thumb + caption_height), (index % columns) * (cell_w + 6)
        sheet[top:top + thumb, left:left + cell_w] = cell
        _caption(sheet, caption, left, top + thumb, cell_w)
    return sheet


def titled_captions(titles: Sequence[str], max_chars: int) -> tuple[list[str], str]:
    """Numbered captions for a sheet and a markdown legend for the titles a caption cannot show whole (not
    printable ASCII, or longer than ``max_chars``, the width a sheet draws); empty when every caption is whole."""
    captions, legend = [], []
    for number, title in enumerate(titles, start=1):
        title = " ".join(str(title).split()) or "untitled"
        caption = f"{number}. {title}"
        if not (title.isascii() and title.isprintable()):
            caption = f"{number}."
        captions.append(caption)
        if caption != f"{number}. {title}" or len(caption) > max_chars:
            # "- 7\\. title": a bullet with the literal number (an ordered list would renumber the gaps)
            legend.append(f"- {number}\\. {markdown_text(title, 160)}")
    return captions, "\n".join(legend)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def crop_tiles(tiles: pd.DataFrame, painting_paths: dict[str, str]) -> list[np.ndarray]:
    """Crop tiles straight from their paintings (works for rejected tiles, which have no files of their own)."""
    crops: list[np.ndarray] = []
    decoded: dict[str, np.ndarray] = {}
    for row in tiles.itertuples():
        if row.painting_id not in decoded:
            decoded[row.painting_id] = imaging.decode_image(painting_paths[row.painting_id])
        rgb = decoded[row.painting_id]
        crops.append(rgb[row.y:row.y + row.size, row.x:row.x + row.size])
    return crops


def png_data_uri(rgb: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode preview image")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def markdown_image(rgb: np.ndarray, alt: str) -> str:
    """A markdown image with the picture inlined, so it shows in the Dagster UI without a file server."""
    return f"![{markdown_text(alt)}]({png_data_uri(rgb)})"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(text: object, max_len: int | None = None) -> str:
    """``text`` as literal markdown: HTML characters escaped as entities, markdown syntax backslash-escaped,
    one line. File names, titles and error details come from outside (scraped files, metadata.csv, servers)
    and must never become links, images, HTML or extra table columns in the Dagster UI."""
    value = " ".join(str(text).split())
    if max_len is not None and len(value) > max_len:
        value = value[: max_len - 1] + "…"
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value)


PROVENANCE_COLUMNS = (("painting", "path"), ("source", "source"), ("title", "title"), ("artist", "artist"),
                      ("licence", "license"), ("source URL", "source_url"), ("page", "source_page"),
                      ("other fields", "provenance"))


def provenance_markdown(paintings: pd.DataFrame, rows: int = 8) -> str:
    """Where the first ``rows`` paintings come from, as a markdown table: file name, source, title, artist,
    licence, source URL and page (already redacted in the table), the other provenance fields. Every cell is
    escaped text (:func:`markdown_text`): nothing from a source becomes a link, an image or HTML."""
    present = [(head, column) for head, column in PROVENANCE_COLUMNS if column in paintings]
    if paintings.empty or not present:
        return "No provenance recorded."
    lines = ["| " + " | ".join(head for head, _ in present) + " |", "|" + " --- |" * len(present)]
    for row in paintings.head(rows).to_dict("records"):
        cells = []
        for _, column in present:
            value = row.get(column)
            value = "" if value is None or (isinstance(value, float) and value != value) else str(value)
            if column == "path":
                value = value.replace("\\", "/").rsplit("/", 1)[-1]
            cells.append(markdown_text(value, 80))
        lines.append("| " + " | ".join(cells) + " |")
    if len(paintings) > rows:
        lines.append(f"\n{len(paintings) - rows} more in dataset/paintings.parquet (columns source_url, "
                     "source_page, provenance).")
    return "\n".join(lines)
