"""Previews name paintings by title, never by hash; titles a caption cannot draw are spelled out, escaped."""

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.curation import previews
from lpd_pipeline.defs.assets.dataset import _pairs_preview
from lpd_pipeline.settings import StorageLayout


def test_titled_captions_number_every_item_and_spell_out_what_a_caption_cannot_show():
    captions, legend = previews.titled_captions(["Early Spring", "早春图", "A title far too long for its cell"],
                                                max_chars=16)
    assert captions == ["1. Early Spring", "2.", "3. A title far too long for its cell"]
    # Numbered as on the sheet: literal numbers (an ordered list would renumber 2, 3 as 1, 2).
    assert legend.splitlines() == ["- 2\\. 早春图", "- 3\\. A title far too long for its cell"]
    _, hostile = previews.titled_captions(["![x](http://evil/a.png) <b>"], max_chars=8)
    assert "![x](" not in hostile and "<b>" not in hostile


def test_pair_sheet_puts_gray_beside_colour():
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 0] = 200
    gray = imaging.luma_bt601(colour)
    sheet = previews.pair_sheet([(gray, colour)] * 3, ["a", "b", "c"], thumb=16, columns=2)
    assert sheet.shape == (2 * (16 + 16), 2 * (2 * 16 + 2 + 6), 3)
    left, right = sheet[:16, :16], sheet[:16, 18:34]
    assert (left[..., 0] == left[..., 2]).all()  # gray
    assert (right[..., 0] == 200).all() and (right[..., 1] == 0).all()


def test_the_pairs_preview_of_tile_pairs_shows_titles_and_every_split(tmp_path):
    layout = StorageLayout(tmp_path)
    rows, paintings = [], []
    for number, (split, title) in enumerate([("train", "溪山行旅图"), ("train", "Early Spring"),
                                              ("test_color", "Autumn Colours"), ("test_ink", "Ink Peaks")]):
        painting_id = f"{number:02d}deadbeefcafe"
        colour = np.full((16, 16, 3), 40 * number, np.uint8)
        for kind, pixels in (("color", colour), ("gray", imaging.luma_bt601(colour))):
            imaging.save_image(tmp_path / "dataset" / "tiles" / painting_id / f"0_0_16_{kind}.png", pixels)
        rows.append({"painting_id": painting_id, "split": split, "score_blank": 0.0,
                     "color_path": f"dataset/tiles/{painting_id}/0_0_16_color.png",
                     "gray_path": f"dataset/tiles/{painting_id}/0_0_16_gray.png"})
        paintings.append({"painting_id": painting_id, "title": title, "path": f"/raw/{number}.jpg"})
    markdown = _pairs_preview(layout, pd.DataFrame(paintings), pd.DataFrame(rows))
    assert markdown.startswith("![gray \\| colour pairs](data:image/png;base64,")
    assert "train: 溪山行旅图" in markdown  # not drawable: in the legend
    assert "deadbeef" not in markdown
