"""Shape features of the learned tile filter (lpd_pipeline.curation.shape_features): seals, text, bare ground."""

from __future__ import annotations

import cv2
import numpy as np

from lpd_pipeline.curation.filters import _Tile
from lpd_pipeline.curation.shape_features import SHAPE_FEATURE_NAMES, shape_features
from lpd_pipeline_tests.test_filters import landscape, paper, with_inscription, with_seal


def features(rgb: np.ndarray) -> dict[str, float]:
    return dict(zip(SHAPE_FEATURE_NAMES, shape_features(_Tile(rgb)), strict=True))


def test_names_are_unique_and_values_finite():
    values = shape_features(_Tile(landscape(256, 1)))
    assert len(values) == len(SHAPE_FEATURE_NAMES) == len(set(SHAPE_FEATURE_NAMES))
    assert np.isfinite(values).all()


def test_stamp_seen_on_paper_and_on_yellow_silk():
    for ground in (paper(256, 2), paper(256, 3, colour=(205, 170, 90))):  # neutral paper, yellow silk
        clean, stamped = features(ground), features(with_seal(ground))
        assert stamped["stamp_score"] > 0.005 > clean["stamp_score"]
        assert stamped["stamp_lift"] > 15
        assert stamped["stamp_hue_spread"] < 15  # one pigment
    sharp = features(with_seal(paper(256, 2)))["stamp_edge"]
    soft = features(cv2.GaussianBlur(with_seal(paper(256, 2)), (0, 0), 4))["stamp_edge"]  # a wash fades out
    assert sharp > 2 * soft


def test_stamp_cut_by_the_tile_edge_counts_as_square():
    tile = paper(256, 4)
    cv2.rectangle(tile, (220, 40), (255, 100), (190, 45, 35), -1)  # a 60 px seal, its right part outside
    assert features(tile)["stamp_score"] > 0.01


def test_red_blob_among_warm_neighbours_is_damped():
    rng = np.random.default_rng(5)
    stamped = with_seal(landscape(256, 5))
    tile = stamped.copy()
    for _ in range(300):  # orange and red leaves all around the same red square: foliage, not a stamp
        x, y = int(rng.integers(150, 250)), int(rng.integers(0, 90))
        colour = (190, 50, 40) if rng.random() < 0.3 else (215, 130, 50)
        cv2.circle(tile, (x, y), int(rng.integers(1, 3)), colour, -1)
    cv2.rectangle(tile, (179, 25), (179 + 46, 25 + 46), (190, 45, 35), -1)
    assert features(tile)["stamp_ring_warm"] > features(stamped)["stamp_ring_warm"]
    assert features(tile)["stamp_score"] < 0.7 * features(stamped)["stamp_score"]


def test_stamp_beside_calligraphy_sees_the_ink():
    ground = paper(256, 6)
    plain, signed = features(with_seal(ground)), features(with_seal(with_inscription(ground)))
    assert signed["stamp_ring_ink"] > plain["stamp_ring_ink"]


def test_text_columns_and_title_lines():
    column = features(with_inscription(paper(256, 7)))
    assert column["line_columns"] >= 1 and column["line_column_bare"] > 0.5
    title = paper(256, 8)
    rng = np.random.default_rng(8)
    for k in range(7):  # one horizontal line of seven pseudo-characters along the top
        x0 = 30 + k * 28
        for _ in range(5):
            p = rng.integers(0, 20, 4)
            cv2.line(title, (x0 + int(p[0]), 20 + int(p[1])), (x0 + int(p[2]), 20 + int(p[3])), (25, 25, 25), 2,
                     cv2.LINE_AA)
    line = features(title)
    assert line["line_rows"] >= 1 and line["line_row_length"] > 0.6 and line["line_columns"] == 0
    assert features(paper(256, 9))["glyph_count"] == 0


def test_bare_silk_is_plain_and_brushwork_is_not():
    silk = paper(256, 10, colour=(180, 140, 90))
    silk[::4] = np.clip(silk[::4].astype(int) - 6, 0, 255).astype(np.uint8)  # faint weave
    bare, painted = features(silk), features(landscape(256, 10))
    assert bare["plain_luma_flat1"] > 0.9 > painted["plain_luma_flat1"]
    assert bare["plain_red_spread"] < painted["plain_red_spread"]
    # a seal on bare silk leaves the red plane flat
    assert features(with_seal(silk))["plain_red_flat25"] > 0.9


def test_large_calligraphy_is_seen_at_quarter_resolution():
    tile = paper(256, 11)
    for row in range(5):  # one column of five 田-shaped characters, 36 px with 5 px strokes, 14 px apart
        x0, y0 = 100, 6 + row * 50
        cv2.rectangle(tile, (x0, y0), (x0 + 36, y0 + 36), (20, 20, 20), 5)
        cv2.line(tile, (x0 + 18, y0), (x0 + 18, y0 + 36), (20, 20, 20), 5)
        cv2.line(tile, (x0, y0 + 18), (x0 + 36, y0 + 18), (20, 20, 20), 5)
    big, small = features(tile), features(paper(256, 11))
    assert big["bigglyph_in_column"] >= 3 and big["bigline_columns"] >= 1 and big["bigline_column_bare"] > 0.5
    assert small["bigglyph_count"] == 0 and small["bigline_columns"] == 0


def test_rim_sees_a_thin_frame_line_and_a_fan_border():
    plain = paper(256, 12)
    framed = plain.copy()
    framed[4:6, :] = 120  # a frame line 4 px from the top: inside the rule's margin
    assert features(framed)["rim_edge"] > 3 * features(plain)["rim_edge"]
    fan = np.full((256, 256, 3), (235, 230, 220), np.uint8)
    cv2.circle(fan, (128, 300), 250, (200, 170, 110), -1)  # a fan leaf's arc across the tile
    fan = cv2.add(fan, paper(256, 12) // 16)
    assert features(fan)["rim_longest_edge"] > 0.9
    strip = plain.copy()
    strip[:, :6] = (60, 60, 60)  # a dark scanner margin along the left side
    assert features(strip)["rim_step"] > 20 > features(plain)["rim_step"]


def test_bare_cells_count_the_bare_area_beside_a_seal_or_text():
    silk = paper(256, 13, colour=(200, 170, 120))
    bare = features(silk)
    sealed, written = features(with_seal(silk)), features(with_inscription(silk))  # a seal; a block of text
    painted = features(landscape(256, 13))
    assert bare["plain_luma_bare12"] == 1.0
    # the seal or the text takes some cells, the rest stay bare; brushwork over the whole tile leaves few
    assert sealed["plain_luma_bare12"] > 0.8 and written["plain_luma_bare12"] > 0.5 > 0.1 > painted["plain_luma_bare12"]
    assert sealed["plain_red_bare12"] > sealed["plain_luma_bare12"]  # the seal fades in the red plane
    assert 0.0 <= painted["plain_luma_bare6"] <= painted["plain_luma_bare12"] <= painted["plain_luma_bare24"] <= 1.0
