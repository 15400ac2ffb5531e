"""The learned tile filter: features, boosted stumps, the model file, and how decisions fall back to the rules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lpd_pipeline.curation import dataset as curation
from lpd_pipeline.curation import tile_model
from lpd_pipeline.curation.filters import FILTER_NAMES, FilterThresholds, score_tile
from lpd_pipeline.curation.tile_features import FEATURE_NAMES, tile_features
from lpd_pipeline_tests.test_filters import landscape, paper, with_seal

THRESHOLDS = FilterThresholds()


def test_features_are_named_finite_and_reuse_rule_scores():
    tile = with_seal(landscape(128, 2))
    scores = score_tile(tile)
    features = tile_features(tile, scores)
    assert features.shape == (len(FEATURE_NAMES),) and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert np.isfinite(features).all()
    assert np.array_equal(features, tile_features(tile))  # scores computed when not given: the same
    assert [features[FEATURE_NAMES.index(f"rule_{n}")] for n in FILTER_NAMES] == [scores[n] for n in FILTER_NAMES]


def test_red_blob_features_see_a_stamp():
    clean, stamped = landscape(128, 1), with_seal(landscape(128, 1))
    index = FEATURE_NAMES.index("red_blob15_score")
    assert tile_features(stamped)[index] > 10 * tile_features(clean)[index] + 1e-4


def test_fit_class_separates_a_simple_rule_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 2] > 0.3).astype(float)
    model = tile_model.fit_class(x, y, rounds=60)
    p = model.probability(x)
    assert ((p > 0.5) == (y > 0)).mean() > 0.97
    assert [s[0] for s in model.stumps].count(2) > 0.8 * len(model.stumps)  # mostly the informative feature
    assert tile_model.fit_class(x, y, rounds=60) == model


def test_probability_adds_the_stumps_in_order_bit_for_bit():
    """The vectorised sum is the one-by-one sum (base first), for one tile and for many, NaN features included."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    x[3, 2] = np.nan
    stumps = tuple((int(rng.integers(0, 6)), float(rng.normal()), float(rng.normal()), float(rng.normal()))
                   for _ in range(150))
    model = tile_model.ClassModel(0.37, stumps, 0.5)
    logit = np.full(len(x), 0.37)
    for index, split, left, right in stumps:
        logit += np.where(x[:, index] < split, left, right)
    expected = 1.0 / (1.0 + np.exp(-logit))
    assert np.array_equal(model.probability(x), expected)
    assert all(np.array_equal(model.probability(x[i]), expected[i:i + 1]) for i in range(len(x)))
    assert np.array_equal(tile_model.ClassModel(0.37, (), 0.5).probability(x), np.full(len(x), 1 / (1 + np.exp(-0.37))))


def test_features_are_reproducible_bit_for_bit():
    """Same tile, same features, whatever the memory layout (cv2.magnitude once made stamp_edge vary)."""
    tile = with_seal(landscape(256, 3))
    first = tile_features(tile)
    for offset in range(1, 6):
        buffer = np.zeros(tile.size + offset, np.uint8)
        moved = buffer[offset:].reshape(tile.shape)
        moved[...] = tile
        assert np.array_equal(tile_features(moved), first)


def test_folded_watermark_network_computes_the_same_function():
    torch = pytest.importorskip("torch")
    from lpd_pipeline.curation import watermark_net

    torch.manual_seed(0)
    network = watermark_net.build_network()
    for module in network.body:  # non-trivial BatchNorm statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(-1.5, 1.5)  # negative scales too: max pooling must not see them
            module.bias.data.uniform_(-0.5, 0.5)
    network.eval()
    x = torch.rand(5, 3, watermark_net.INPUT_SIDE, watermark_net.INPUT_SIDE)
    with torch.inference_mode():
        reference = network(x)
        folded = network.readout(watermark_net.inference_body(network)(x))
    assert torch.allclose(folded, reference, atol=1e-4, rtol=1e-4)


def _toy_model(threshold: float = 0.5) -> tile_model.TileModel:
    index = FEATURE_NAMES.index("rule_seal")
    seal = tile_model.ClassModel(0.0, ((index, 0.001, -5.0, 5.0),), threshold)
    return tile_model.TileModel(64, {"seal": seal})


def test_model_decides_its_classes_and_rules_decide_the_rest():
    model = _toy_model()
    scores = {name: 0.0 for name in FILTER_NAMES}
    scores["blank"] = 0.9  # rule fires: blank is not modelled, so the rule decides
    scores["seal"] = 0.5  # rule fires, but the model decides seal
    assert model.reasons(scores, {"seal": 0.2}, THRESHOLDS) == ["blank"]
    assert model.reasons(scores, {"seal": 0.9}, THRESHOLDS) == ["blank", "seal"]
    with pytest.raises(ValueError, match="NaN"):
        model.reasons(scores, {"seal": float("nan")}, THRESHOLDS)
    # with_rule: the class's rule rejects too (chosen in training where the rule is precise)
    index = FEATURE_NAMES.index("rule_seal")
    both = tile_model.TileModel(64, {"seal": tile_model.ClassModel(0.0, ((index, 0.001, -5.0, 5.0),), 0.5, True)})
    assert both.reasons(scores, {"seal": 0.2}, THRESHOLDS) == ["blank", "seal"]
    scores["seal"] = 0.0
    assert both.reasons(scores, {"seal": 0.2}, THRESHOLDS) == ["blank"]


def test_model_file_round_trip_and_clear_refusals(tmp_path):
    model = _toy_model(0.7)
    path = model.save(tmp_path / "m.json")
    loaded = tile_model.load_model(path)
    assert loaded == model and loaded.fingerprint() == model.fingerprint()
    payload = json.loads(path.read_text())
    payload["feature_names"] = payload["feature_names"][:-1]
    (tmp_path / "old.json").write_text(json.dumps(payload))
    with pytest.raises(tile_model.TileModelError, match="old.json.*other features"):
        tile_model.load_model(tmp_path / "old.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(tile_model.TileModelError, match="bad.json.*cannot read"):
        tile_model.load_model(tmp_path / "bad.json")
    payload = json.loads(path.read_text())
    payload["classes"]["seal"]["stumps"] = [[999, 0.0, 0.0, 0.0]]
    (tmp_path / "index.json").write_text(json.dumps(payload))
    with pytest.raises(tile_model.TileModelError, match="out of range"):
        tile_model.load_model(tmp_path / "index.json")


def test_resolve_model_falls_back_to_rules(tmp_path):
    assert tile_model.resolve_model("none", 256) is None
    path = _toy_model().save(tmp_path / "toy.json")
    assert tile_model.resolve_model(str(path), 64).classes.keys() == {"seal"}
    assert tile_model.resolve_model(str(path), 128) is None  # trained on another tile size: rules
    if tile_model.BUNDLED_MODEL.is_file():
        bundled = tile_model.resolve_model("bundled", 256)
        assert bundled is not None and set(bundled.classes) <= set(FILTER_NAMES)
        assert tile_model.resolve_model("bundled", 64) is None


def test_bundled_model_is_small_enough_to_ship():
    if not tile_model.BUNDLED_MODEL.is_file():
        pytest.skip("no bundled tile model in this checkout: the rules decide (bench/train_tile_model.py)")
    total = tile_model.BUNDLED_MODEL.stat().st_size
    for name in ("watermark_net.pt", "text_net.pt"):
        weights = tile_model.BUNDLED_MODEL.with_name(name)
        total += weights.stat().st_size if weights.is_file() else 0
    assert total < 2 * 1024 * 1024


def test_config_names_the_decider_and_refuses_missing_model_files(tmp_path):
    assert curation.CurationConfig(tile_model="none").learned_filter() is None
    with pytest.raises(ValueError, match="tile_model"):
        curation.CurationConfig(tile_model=str(tmp_path / "missing.json"))
    toy = _toy_model().save(tmp_path / "toy.json")
    config = curation.CurationConfig(tile_model=str(toy), tile_size=64, stride=64)
    assert config.learned_filter() is not None
    assert curation._score_cache_name(config) != curation._score_cache_name(config.model_copy(
        update={"tile_model": "none"}))


def test_cut_tiles_uses_the_model_and_records_probabilities(tmp_path):
    from lpd_pipeline.imaging import save_image
    from lpd_pipeline.settings import StorageLayout

    raw = tmp_path / "raw"
    raw.mkdir()
    image = np.concatenate([landscape(64, 0), with_seal(landscape(64, 1))], axis=1)
    save_image(raw / "p.png", image)
    from lpd_pipeline.sources.local import scan_local_folder

    toy = _toy_model().save(tmp_path / "toy.json")
    layout = StorageLayout(tmp_path / "storage")
    results = {}
    for decider in (str(toy), "none"):
        config = curation.CurationConfig(workers=1, tile_size=64, stride=64, tile_model=decider)
        items, _ = scan_local_folder(raw)
        paintings, _ = curation.ingest_paintings(items, config)
        marked, _ = curation.dedup_paintings(paintings, config)
        tiles, _ = curation.cut_tiles(marked, layout, config)
        results[decider] = tiles.sort_values("x")
    learned = results[str(toy)]
    assert not math.isnan(learned["p_seal"].iloc[1]) and learned["p_blank"].isna().all()
    assert "seal" in learned["rejected_by"].iloc[1].split(",")
    assert results["none"]["p_seal"].isna().all()


def test_small_paintings_rejected_or_upscaled_and_marked(tmp_path):
    from lpd_pipeline.imaging import decode_image, save_image
    from lpd_pipeline.settings import StorageLayout
    from lpd_pipeline.sources.local import scan_local_folder

    raw = tmp_path / "raw"
    raw.mkdir()
    save_image(raw / "small.png", landscape(100, 3)[:50, :])  # 100 x 50: short side 50 < the 64 px tile
    save_image(raw / "tiny.png", landscape(40, 4)[:20, :])  # short side 20: beyond a 2x upscale
    layout = StorageLayout(tmp_path / "storage")
    for upscale in (1.0, 2.0):
        config = curation.CurationConfig(workers=1, tile_size=64, stride=64, tile_model="none", max_upscale=upscale)
        items, _ = scan_local_folder(raw)
        paintings, _ = curation.ingest_paintings(items, config)
        marked, _ = curation.dedup_paintings(paintings, config)
        tiles, rejections = curation.cut_tiles(marked, layout, config)
        too_small = rejections[rejections["reason"] == "too_small"]
        if upscale == 1.0:
            assert len(tiles) == 0 and len(too_small) == 2
            assert too_small["detail"].str.contains("max_upscale").all()
        else:
            assert len(too_small) == 1 and too_small["item"].iloc[0].endswith("tiny.png")
            assert len(tiles) == 2 and (tiles["upscale"] == 64 / 50).all()
            kept = tiles[tiles["rejected_by"] == ""]
            for path in kept["color_path"]:
                assert decode_image(layout.path(path)).shape == (64, 64, 3)


@pytest.mark.parametrize("seed", range(3))
def test_bundled_model_on_generated_defects(seed):
    """The pipeline's decision (bundled model + rules) on generated 256-px tiles: each planted defect is rejected
    for its class and the clean tile is kept. (Generated pseudo-calligraphy and site marks over the synthetic
    landscape are not caught at 256 px: test_learned_filter_real.py measures those classes on real tiles.)"""
    from lpd_pipeline.curation import synthetic_watermarks
    from lpd_pipeline_tests.test_filter_labels import _bench
    from lpd_pipeline_tests.test_filters import blurred, with_bar, with_cast

    model = tile_model.resolve_model("bundled", 256)
    if model is None or model.watermark is None:
        pytest.skip("no bundled tile model in this checkout: the rules decide (see test_filters.py)")
    bench = _bench()
    base = landscape(256, seed)
    cases = {
        "seal": with_seal(base, seed), "blur": blurred(base), "padding": with_bar(base, 0.2, (128, 128, 128)),
        "blank": paper(256, seed), "odd_colour": with_cast(base, (0.8, 1.0, 1.05)),
        "watermark": synthetic_watermarks.add_watermark(base, seed, "corner")[0],
    }
    assert bench.decide(base, THRESHOLDS, model)[1] == ()
    for name, tile in cases.items():
        assert name in bench.decide(tile, THRESHOLDS, model)[1], name


def test_fit_class_weights_shift_the_fit():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(float)
    noisy = y.copy()
    noisy[(x[:, 1] > 1.0) & (y == 0)] = 1.0  # label noise along feature 1
    plain = tile_model.fit_class(x, noisy, rounds=40, weights=np.ones(len(x)))
    assert plain == tile_model.fit_class(x, noisy, rounds=40)  # weights of 1 = no weights
    down = np.where(noisy != y, 0.05, 1.0)
    weighted = tile_model.fit_class(x, noisy, rounds=40, weights=down)
    clean_part = x[:, 1] > 1.0
    assert (weighted.probability(x[clean_part]) > 0.5).mean() < (plain.probability(x[clean_part]) > 0.5).mean()


def test_watermark_rule_is_skipped_only_when_the_cnn_decides_and_no_stump_reads_it(tmp_path):
    import shutil
    from dataclasses import replace

    from lpd_pipeline.curation import filters

    if not tile_model.BUNDLED_WEIGHTS.is_file():
        pytest.skip("no bundled watermark CNN in this checkout (bench/train_watermark_net.py)")
    assert _toy_model().rules_to_skip() == ()  # no CNN: the watermark rule decides
    path = _toy_model().save(tmp_path / "toy.json")
    shutil.copy(tile_model.BUNDLED_WEIGHTS, tmp_path / "watermark_net.pt")
    model = tile_model.resolve_model(str(path), 64)
    assert model.watermark is not None and model.rules_to_skip() == ("watermark",)
    assert model.rules_needed() == ("blank", "blur", "inscription", "padding", "odd_colour")
    tile = with_seal(landscape(64, 3))
    full = score_tile(tile)
    skipped = filters.scores_of(filters._Tile(tile), model.rules_to_skip())
    assert math.isnan(skipped["watermark"]) and {n: full[n] for n in FILTER_NAMES if n != "watermark"} == {
        n: skipped[n] for n in FILTER_NAMES if n != "watermark"}
    probabilities = {"seal": 0.9, "watermark": 0.1}
    assert model.reasons(skipped, probabilities, THRESHOLDS) == model.reasons(full, probabilities, THRESHOLDS)
    with pytest.raises(ValueError, match="NaN"):  # the rules alone still refuse a missing score
        filters.rejection_reasons(skipped, THRESHOLDS)
    reads_it = tile_model.ClassModel(0.0, ((FEATURE_NAMES.index("rule_watermark"), 0.01, -1.0, 1.0),), 0.5)
    assert replace(model, classes={"seal": reads_it}).rules_to_skip() == ()


def test_cut_tiles_records_no_watermark_rule_score_when_the_cnn_decides(tmp_path):
    import shutil

    from lpd_pipeline.imaging import save_image
    from lpd_pipeline.settings import StorageLayout
    from lpd_pipeline.sources.local import scan_local_folder

    if not tile_model.BUNDLED_WEIGHTS.is_file():
        pytest.skip("no bundled watermark CNN in this checkout (bench/train_watermark_net.py)")
    raw = tmp_path / "raw"
    raw.mkdir()
    save_image(raw / "p.png", np.concatenate([landscape(64, 0), with_seal(landscape(64, 1))], axis=1))
    toy = _toy_model().save(tmp_path / "model" / "toy.json")
    shutil.copy(tile_model.BUNDLED_WEIGHTS, toy.with_name("watermark_net.pt"))
    config = curation.CurationConfig(workers=1, tile_size=64, stride=64, tile_model=str(toy))
    items, _ = scan_local_folder(raw)
    paintings, _ = curation.ingest_paintings(items, config)
    marked, _ = curation.dedup_paintings(paintings, config)
    tiles, _ = curation.cut_tiles(marked, StorageLayout(tmp_path / "storage"), config)
    assert tiles["score_watermark"].isna().all() and tiles["p_watermark"].notna().all()
    assert tiles["score_seal"].notna().all() and "seal" in tiles.sort_values("x")["rejected_by"].iloc[1]
