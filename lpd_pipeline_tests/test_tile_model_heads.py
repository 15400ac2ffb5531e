"""The learned tile filter's linear heads over the ImageNet trunk (tile_model.LinearHead, trunk_features): the
mean of stumps and head decides with the heads' thresholds where the trunk is loaded, the stumps alone with their
own thresholds where it is not; the model file round-trips them and refuses heads it cannot read."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lpd_pipeline.curation import tile_model, trunk_features
from lpd_pipeline.curation.filters import FILTER_NAMES, FilterThresholds
from lpd_pipeline.curation.tile_features import FEATURE_NAMES
from lpd_pipeline_tests.metrics_fixtures import metric_weights  # noqa: F401

WIDTH = len(FEATURE_NAMES) + trunk_features.FEATURE_COUNT
SEAL = FEATURE_NAMES.index("rule_seal")


class FixedTrunk:
    """Stands in for the trunk: the same features for every tile (the head then reads the hand-made ones)."""

    def __init__(self) -> None:
        self.path = Path("alexnet-test.pth")

    def features(self, tiles):
        return np.zeros((len(tiles), trunk_features.FEATURE_COUNT))


def _model_with_heads() -> tile_model.TileModel:
    """Seal by stumps (P 0.99 when rule_seal > 0.001, else 0.007) with threshold 0.5 and no rule, and a head that
    reads rule_seal alone (weight 10 on it), with threshold 0.9 and its rule on."""
    stumps = tile_model.ClassModel(0.0, ((SEAL, 0.001, -5.0, 5.0),), 0.5, False)
    columns = tuple(range(WIDTH))
    weights = np.zeros(WIDTH)
    weights[SEAL] = 10.0
    inputs = tile_model.LinearInputs(trunk_features.NAME, columns, (0.0,) * WIDTH, (1.0,) * WIDTH)
    head = tile_model.LinearHead(tuple(weights), -5.0, 0.9, True)
    return tile_model.TileModel(64, {"seal": stumps}, FEATURE_NAMES, heads={"seal": head}, linear_inputs=inputs)


def test_heads_decide_with_their_own_thresholds_only_where_the_trunk_is_loaded():
    model = _model_with_heads()
    features = np.zeros((2, len(FEATURE_NAMES)))
    features[1, SEAL] = 1.0  # stumps 0.993; head sigmoid(10 - 5) = 0.9933
    tiles = [np.zeros((64, 64, 3), np.uint8)] * 2
    alone = model.tile_probabilities(features, tiles)
    assert not model.uses_heads() and model.threshold("seal") == 0.5 and not model.with_rule("seal")
    on = replace(model, trunk=FixedTrunk())
    assert on.uses_heads() and on.threshold("seal") == 0.9 and on.with_rule("seal")
    both = on.tile_probabilities(features, tiles)
    head = 1 / (1 + np.exp(-(10.0 * features[:, SEAL] - 5.0)))
    for i in range(2):
        assert both[i]["seal"] == pytest.approx(0.5 * (alone[i]["seal"] + head[i]), abs=1e-12)
    # The heads' rule flag follows them: seal's rule now rejects even at a low probability.
    scores = {name: 0.0 for name in FILTER_NAMES}
    scores["seal"] = 0.9
    assert on.reasons(scores, {"seal": 0.1}, FilterThresholds()) == ["seal"]
    assert model.reasons(scores, {"seal": 0.1}, FilterThresholds()) == []
    assert on.fingerprint() != model.fingerprint()
    assert on.without_heads().threshold("seal") == 0.5


def test_heads_skip_feature_columns_left_out_in_training():
    """A rule ingest skips scores NaN; the heads never read a column left out of ``columns``."""
    model = _model_with_heads()
    columns = tuple(j for j in range(WIDTH) if j != FEATURE_NAMES.index("rule_watermark"))
    inputs = tile_model.LinearInputs(trunk_features.NAME, columns, (0.0,) * len(columns), (1.0,) * len(columns))
    head = tile_model.LinearHead((0.0,) * len(columns), 0.0, 0.9)
    on = replace(model, heads={"seal": head}, linear_inputs=inputs, trunk=FixedTrunk())
    features = np.zeros((1, len(FEATURE_NAMES)))
    features[0, FEATURE_NAMES.index("rule_watermark")] = np.nan
    assert np.isfinite(on.tile_probabilities(features, [np.zeros((64, 64, 3), np.uint8)])[0]["seal"])


def test_model_file_round_trips_heads_and_refuses_ones_it_cannot_read(tmp_path):
    model = _model_with_heads()
    path = model.save(tmp_path / "heads.json")
    loaded = tile_model.load_model(path)
    assert loaded == model and loaded.heads["seal"].threshold == 0.9 and loaded.linear_inputs.columns[-1] == WIDTH - 1
    for change, message in ((lambda p: p["linear"].update(trunk="vgg16-224"), "vgg16-224.*retrain"),
                            (lambda p: p["linear"]["classes"]["seal"]["weights"].pop(), "wrong width"),
                            (lambda p: p["linear"].update(columns=[*p["linear"]["columns"][:-1], WIDTH]),
                             "out of range"),
                            (lambda p: p["linear"]["classes"].update(blank=p["linear"]["classes"]["seal"]),
                             "without stumps"),
                            (lambda p: p["linear"].pop("std"), "malformed linear heads")):
        payload = json.loads(path.read_text())
        change(payload)
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps(payload))
        with pytest.raises(tile_model.TileModelError, match=f"broken.json.*{message}"):
            tile_model.load_model(broken)


def test_without_the_alexnet_weights_the_stumps_decide_alone(tmp_path, monkeypatch, caplog):
    path = _model_with_heads().save(tmp_path / "heads.json")
    monkeypatch.setenv("LPD_METRIC_WEIGHTS", str(tmp_path / "no-weights"))
    tile_model.resolve_model.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            model = tile_model.resolve_model(str(path), 64)
    finally:
        tile_model.resolve_model.cache_clear()
    assert not model.heads and model.threshold("seal") == 0.5
    assert "lpd_pipeline.metrics.weights" in caplog.text and "stumps decide alone" in caplog.text


def test_fit_linear_separates_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 2] > 0.3).astype(float)
    coef, bias = tile_model.fit_linear(x, y, l2=0.001)
    p = 1 / (1 + np.exp(-(x @ coef + bias)))
    assert ((p > 0.5) == (y > 0)).mean() > 0.95 and np.argmax(np.abs(coef)) == 2
    again = tile_model.fit_linear(x, y, l2=0.001)
    assert np.array_equal(coef, again[0]) and bias == again[1]
    # Stronger L2 shrinks the weights; tile weights move the fit toward the heavy tiles.
    assert np.abs(tile_model.fit_linear(x, y, l2=1.0)[0]).sum() < np.abs(coef).sum()


def test_trunk_features_are_per_channel_means_and_stds(metric_weights, one_torch_thread):  # noqa: F811
    trunk = trunk_features.TrunkFeatures()
    rng = np.random.default_rng(1)
    tiles = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(3)]
    flat = [np.full((256, 256, 3), (200, 180, 140), np.uint8)]
    features = trunk.features(tiles + flat, batch=2)
    assert features.shape == (4, trunk_features.FEATURE_COUNT) == (4, len(trunk_features.feature_names()))
    assert np.isfinite(features).all() and (features >= 0).all()  # ReLU outputs: means and stds are >= 0
    # A flat tile has no spatial variation away from the borders: its first stage's stds are far below noise's.
    std1 = slice(64, 128)
    assert features[3, std1].mean() < 0.2 * features[0, std1].mean()
    # The batch size changes a tile's figures by float rounding only.
    assert np.allclose(trunk.features(tiles[:1]), features[:1], rtol=1e-5, atol=1e-6)


def test_bundled_model_has_heads_for_every_class_and_the_stumps_keep_theirs():
    if not tile_model.BUNDLED_MODEL.is_file():
        pytest.skip("no bundled tile model in this checkout: the rules decide (bench/train_tile_model.py)")
    model = tile_model.load_model(tile_model.BUNDLED_MODEL)
    assert set(model.heads) == set(model.classes)
    assert model.linear_inputs.trunk == trunk_features.NAME
    assert all(0 < h.threshold < 1 and 0 < model.classes[n].threshold <= 1 for n, h in model.heads.items())
