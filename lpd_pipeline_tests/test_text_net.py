"""The text detector (issue 12, sixth pass): generated inscriptions, the network, the stump feature it feeds and
the fall-back to the rules without its weights."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lpd_pipeline.curation import synthetic_inscriptions, text_net, tile_model
from lpd_pipeline.curation.filters import FilterThresholds
from lpd_pipeline.curation.tile_features import FEATURE_NAMES, tile_features
from lpd_pipeline_tests.test_filters import landscape, paper

TEXT_INDEX = len(FEATURE_NAMES)  # the text detector's feature comes after the hand-made ones
needs_font = pytest.mark.skipif(synthetic_inscriptions.font_path() is None,
                                reason="the Kai font (apt-get install fonts-arphic-ukai) is not installed")
needs_weights = pytest.mark.skipif(not text_net.BUNDLED_WEIGHTS.is_file(),
                                   reason="no bundled text_net.pt in this checkout (bench/train_text_net.py)")


def _text_model(tile_size: int = 64) -> tile_model.TileModel:
    """Inscription read from the text detector's P alone; seal from a rule score (no text needed)."""
    inscription = tile_model.ClassModel(0.0, ((TEXT_INDEX, 0.5, -5.0, 5.0),), 0.5)
    seal = tile_model.ClassModel(0.0, ((FEATURE_NAMES.index("rule_seal"), 0.001, -5.0, 5.0),), 0.5)
    return tile_model.TileModel(tile_size, {"inscription": inscription, "seal": seal}, tile_model.WITH_TEXT)


def _clean(seed: int) -> np.ndarray:
    return landscape(256, seed) if seed % 2 else paper(256, seed)


@needs_font
def test_generated_inscriptions_are_seeded_dark_ink_columns():
    tile = paper(256, 0)
    marked, info = synthetic_inscriptions.add_inscription(tile, 7)
    again, _ = synthetic_inscriptions.add_inscription(tile, 7)
    other, _ = synthetic_inscriptions.add_inscription(tile, 8)
    assert np.array_equal(marked, again) and not np.array_equal(marked, other)
    assert (marked <= tile.astype(np.int16) + 1).all()  # multiplied on: ink only darkens the paper
    darkened = (tile.astype(np.int16) - marked).max(axis=2) > 20
    assert darkened.mean() > 0.002 and info["characters"] >= 3 and 8 <= info["size"] <= 30
    small, info = synthetic_inscriptions.add_inscription(paper(64, 1), 3)  # sizes scale with the tile
    assert small.shape == (64, 64, 3) and info["size"] <= 8


def test_no_font_no_inscription(monkeypatch, tmp_path):
    monkeypatch.setattr(synthetic_inscriptions, "FONT_PATHS", (tmp_path / "missing.ttc",))
    synthetic_inscriptions.font_path.cache_clear()
    synthetic_inscriptions._font.cache_clear()
    try:
        assert synthetic_inscriptions.font_path() is None
        with pytest.raises(FileNotFoundError, match="fonts-arphic-ukai"):
            synthetic_inscriptions.add_inscription(paper(64), 0)
    finally:
        synthetic_inscriptions.font_path.cache_clear()
        synthetic_inscriptions._font.cache_clear()


@needs_font
@needs_weights
def test_bundled_detector_sees_generated_text_and_not_clean_tiles():
    net = text_net.TextNet()
    clean = [_clean(seed) for seed in range(12)]
    marked = [synthetic_inscriptions.add_inscription(t, 100 + k)[0] for k, t in enumerate(clean)]
    p_clean, p_marked = net.probabilities(clean), net.probabilities(marked)
    assert (p_clean <= net.threshold).mean() >= 0.9, p_clean
    assert (p_marked > net.threshold).mean() >= 0.7, p_marked
    assert np.median(p_marked) > np.median(p_clean) + 0.3


def test_a_model_reading_the_text_feature_round_trips_and_needs_the_detector(tmp_path):
    model = _text_model()
    assert model.reads_text() and not tile_model.TileModel(64, {}).reads_text()
    loaded = tile_model.load_model(model.save(tmp_path / "m.json"))
    assert loaded == model and loaded.feature_names == tile_model.WITH_TEXT
    features = tile_features(landscape(64, 0))
    with pytest.raises(ValueError, match="text_net"):
        model.tile_probabilities(features, [landscape(64, 0)])
    # without the detector the classes that read it are the rules' again; the others stay learned
    resolved = tile_model.resolve_model(str(tmp_path / "m.json"), 64)
    assert resolved.text is None and set(resolved.classes) == {"seal"}
    assert "inscription" in resolved.rules_needed()
    assert set(resolved.tile_probabilities(features, [landscape(64, 0)])[0]) <= {"seal", "watermark"}


@needs_weights
def test_a_model_reading_the_text_feature_uses_the_bundled_detector(tmp_path):
    path = _text_model(256).save(tmp_path / "m.json")
    shutil.copy(text_net.BUNDLED_WEIGHTS, tmp_path / "text_net.pt")
    model = tile_model.resolve_model(str(path), 256)
    assert model.text is not None and set(model.classes) == {"inscription", "seal"}
    tiles = [paper(256, 0), landscape(256, 1)]
    features = np.stack([tile_features(t) for t in tiles])
    rows = model.tile_probabilities(features, tiles)
    p_text = model.text.probabilities(tiles)
    assert [r["inscription"] > 0.5 for r in rows] == list(p_text >= 0.5)
    assert model.fingerprint() != tile_model.resolve_model(str(path), 256).without_text().fingerprint()
    scores = {name: 0.0 for name in FilterThresholds().as_dict()}
    assert model.reasons(scores, {"inscription": 0.9, "seal": 0.1}, FilterThresholds()) == ["inscription"]


@pytest.fixture
def train_text_net_module():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import train_text_net

    return train_text_net


def test_auc_counts_pairs_and_ties(train_text_net_module):
    auc = train_text_net_module.auc
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.5]), np.array([0.5])) == 0.5
    assert auc(np.array([0.1, 0.9]), np.array([0.5])) == 0.5


@needs_weights
def test_real_inscriptions_score_above_keep_tiles(shared_paintings, train_text_net_module):
    """Train-fold labelled tiles (never trained on: the network's tiles exclude every labelled one): the text
    detector ranks real inscriptions above keep tiles."""
    import filter_accuracy as bench

    from lpd_pipeline.imaging import decode_image

    rows = [r for r in bench.read_labels() if r.fold == "train" and not r.unsure and r.size == 256
            and ("inscription" in r.labels or tuple(r.labels) == ("keep",))]
    net, scores, text = text_net.TextNet(), [], []
    for painting, indices in bench._by_painting(rows).items():
        path = shared_paintings / painting
        if not path.is_file():
            pytest.skip(f"{path} missing from ../shared")
        rgb = decode_image(path)
        tiles = [np.ascontiguousarray(bench.crop_tile(rgb, rows[i], painting)) for i in indices]
        scores += list(net.probabilities(tiles))
        text += ["inscription" in rows[i].labels for i in indices]
    scores, text = np.array(scores), np.array(text)
    assert train_text_net_module.auc(scores[text], scores[~text]) > 0.75


def test_wrong_weights_are_refused_naming_the_file(tmp_path):
    pytest.importorskip("torch")
    from lpd_pipeline.curation import watermark_net

    if not watermark_net.BUNDLED_WEIGHTS.is_file():
        pytest.skip("no bundled watermark_net.pt to stand in for a wrong file")
    with pytest.raises(ValueError, match="watermark_net.pt: cannot load the text network"):
        text_net.TextNet(watermark_net.BUNDLED_WEIGHTS)  # other widths
    (tmp_path / "text_net.pt").write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="text_net.pt: cannot load"):
        text_net.TextNet(tmp_path / "text_net.pt")


def test_bundled_model_without_the_text_weights_leaves_their_classes_to_the_rules(tmp_path, caplog):
    if not tile_model.BUNDLED_MODEL.is_file():
        pytest.skip("no bundled tile model in this checkout: the rules decide")
    shutil.copy(tile_model.BUNDLED_MODEL, tmp_path / "tile_model.json")  # no text_net.pt, no watermark_net.pt
    bundled = tile_model.load_model(tile_model.BUNDLED_MODEL)
    with caplog.at_level("WARNING", logger="lpd_pipeline.curation.tile_model"):
        model = tile_model.resolve_model(str(tmp_path / "tile_model.json"), 256)
    readers = {n for n, m in bundled.classes.items() if any(s[0] == TEXT_INDEX for s in m.stumps)}
    if not readers:
        pytest.skip("the bundled model reads no text_net: nothing falls back")
    # Said once, naming the missing file and what decides instead.
    assert f"{tmp_path / 'text_net.pt'} not found" in caplog.text and ", ".join(sorted(readers)) in caplog.text
    assert f"{tmp_path / 'watermark_net.pt'} not found" in caplog.text
    assert model.text is None and not model.reads_text() and not readers & set(model.classes)
    assert set(model.classes) == set(bundled.classes) - readers
    assert readers <= set(model.rules_needed())
    tile = landscape(256, 2)
    rows = model.tile_probabilities(tile_features(tile)[None], [tile])
    assert set(rows[0]) == set(model.classes)
