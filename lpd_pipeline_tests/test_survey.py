"""Survey kit (quiz pages, answer key) and scorer (Wilson interval, binomial p-values, malformed CSVs)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.reports.survey import (
    ANSWER_COLUMNS,
    binomial_summary,
    build_survey_kit,
    read_survey_key,
    score_survey,
    scores_markdown,
)
from lpd_pipeline.reports.survey_sources import colorize_survey_tiles, select_survey_tiles
from lpd_pipeline.models.build import build_model_generator
from lpd_pipeline.training.checkpoints import GENERATOR_FORMAT, save_torch_atomic
from lpd_pipeline_tests.training_fixtures import smooth_tile, tiny_config


def _pool(root, n_paintings=6, tiles=3, size=40, variants=("resnet9", "unet256")):
    rng = np.random.default_rng(0)
    real, fake = [], []
    for p in range(n_paintings):
        for t in range(tiles):
            path = root / f"real_{p}_{t}.png"
            # A text chunk in the source: the survey copy must not carry it.
            Image.fromarray(smooth_tile(rng, size)).save(path, pnginfo=_pnginfo(f"real painting {p}"))
            real.append({"path": path, "painting_id": f"p{p}"})
        for variant in variants:
            path = root / f"fake_{p}_{variant}.png"
            Image.fromarray(smooth_tile(rng, size)).save(path, pnginfo=_pnginfo("machine-colorized"))
            fake.append({"path": path, "painting_id": f"p{p}", "variant": variant})
    return pd.DataFrame(real), pd.DataFrame(fake)


def _pnginfo(text):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    return info


def test_kit_rules(tmp_path):
    real, fake = _pool(tmp_path)
    kit = build_survey_kit(tmp_path / "site", tmp_path / "key.json", real, fake, questions=4, seed=1, size=32)
    key = read_survey_key(kit.key_path)
    assert kit.questions == 4 and set(kit.variants) == {"resnet9", "unet256"}
    assert sorted(q["variant"] for q in key["questions"]).count("resnet9") == 2
    real_paintings, fake_paintings, files = set(), set(), set()
    for question in key["questions"]:
        assert len(question["images"]) == 4 and question["fake"] in question["images"]
        assert question["fake_painting"] not in question["real_paintings"]
        assert len(set(question["real_paintings"])) == 3  # four paintings per question when the pool allows
        real_paintings.update(question["real_paintings"])
        fake_paintings.add(question["fake_painting"])
        files.update(question["images"])
    assert not real_paintings & fake_paintings  # no painting is both real and generated in the survey
    published = sorted(p.name for p in (tmp_path / "site" / "img").iterdir())
    assert published == sorted(f"{i}.png" for i in files)  # random ids, nothing else
    for path in (tmp_path / "site" / "img").iterdir():
        with Image.open(path) as image:
            assert image.size == (32, 32) and not image.info and not image.text
    html = (tmp_path / "site" / "index.html").read_text()
    assert "fake" not in html.lower() and "resnet" not in html and "unet" not in html
    assert not list((tmp_path / "site").rglob("*.json"))  # the key is not published
    # The fake sits at varying positions.
    assert len({q["images"].index(q["fake"]) for q in key["questions"]}) > 1


def test_kit_order_follows_the_seed_and_key_stays_outside(tmp_path):
    real, fake = _pool(tmp_path)
    layouts = []
    for run in range(2):
        kit = build_survey_kit(tmp_path / "site", tmp_path / f"key{run}.json", real, fake, questions=4, seed=7,
                               size=32)
        key = read_survey_key(kit.key_path)
        layouts.append([(q["variant"], q["fake_source"], q["images"].index(q["fake"])) for q in key["questions"]])
    assert layouts[0] == layouts[1]
    with pytest.raises(ValueError, match="outside the published folder"):
        build_survey_kit(tmp_path / "site", tmp_path / "site" / "key.json", real, fake, questions=2, size=32)
    assert (tmp_path / "site" / "index.html").is_file()  # the previous kit is still there


def test_kit_skips_unreadable_images(tmp_path):
    real, fake = _pool(tmp_path, n_paintings=8)
    (tmp_path / "real_0_0.png").write_bytes(b"")  # zero bytes
    (tmp_path / "fake_1_resnet9.png").write_text("<html>")
    kit = build_survey_kit(tmp_path / "site", tmp_path / "key.json", real, fake, questions=4, size=32)
    assert len(kit.skipped) == 2 and any("real_0_0.png" in s for s in kit.skipped)
    key = read_survey_key(kit.key_path)
    used = {src for q in key["questions"] for src in [q["fake_source"], *q["real_sources"]]}
    assert str(tmp_path / "real_0_0.png") not in used and str(tmp_path / "fake_1_resnet9.png") not in used


def test_kit_refuses_an_impossible_pool(tmp_path):
    real, fake = _pool(tmp_path, n_paintings=2, tiles=2)
    with pytest.raises(ValueError, match="cannot build 3 questions: they need 2 generated resnet9"):
        build_survey_kit(tmp_path / "site", tmp_path / "key.json", real, fake, questions=3, size=32)
    assert not (tmp_path / "site").exists() and not (tmp_path / "key.json").exists()


def _write_answers(path, key, respondent, spotted_questions, *, survey_id=None):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ANSWER_COLUMNS)
        for question in key["questions"]:
            wrong = next(i for i in question["images"] if i != question["fake"])
            choice = question["fake"] if question["number"] in spotted_questions else wrong
            writer.writerow([survey_id or key["survey_id"], respondent, question["number"], choice])


def _key(tmp_path, questions=4):
    real, fake = _pool(tmp_path)
    kit = build_survey_kit(tmp_path / "site", tmp_path / "key.json", real, fake, questions=questions, size=32)
    return kit.key_path, read_survey_key(kit.key_path)


def test_scores_known_rates_and_reports_bad_files(tmp_path):
    key_path, key = _key(tmp_path)
    resnet = [q["number"] for q in key["questions"] if q["variant"] == "resnet9"]
    answers = tmp_path / "answers"
    answers.mkdir()
    # 10 respondents: each spots the fake in one resnet9 question only -> resnet9 10/20, unet256 0/20.
    for r in range(10):
        _write_answers(answers / f"r{r:02d}.csv", key, f"resp{r}", {resnet[r % 2]})
    (answers / "zz_wrong_columns.csv").write_text("who,what\nx,y\n")
    _write_answers(answers / "zz_other_survey.csv", key, "other", set(), survey_id="abcdef")
    (answers / "zz_binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    (answers / "zz_copy.csv").write_bytes((answers / "r00.csv").read_bytes())  # the same answers twice
    with open(answers / "zz_bad_choice.csv", "w") as handle:
        handle.write(",".join(ANSWER_COLUMNS) + f"\n{key['survey_id']},x,1,notanimage\n")
    scores = score_survey(answers, key_path)
    table = scores.table.set_index("variant")
    assert (table.loc["resnet9", "answers"], table.loc["resnet9", "fakes_spotted"]) == (20, 10)
    assert (table.loc["unet256", "answers"], table.loc["unet256", "fakes_spotted"]) == (20, 0)
    assert table.loc["all", "rate"] == pytest.approx(0.25) and scores.respondents == 10
    assert len(scores.files) == 10
    bad = {e.path.name: str(e) for e in scores.errors}
    assert set(bad) == {"zz_wrong_columns.csv", "zz_other_survey.csv", "zz_binary.csv", "zz_copy.csv",
                        "zz_bad_choice.csv"}
    assert "missing column" in bad["zz_wrong_columns.csv"] and "survey 'abcdef'" in bad["zz_other_survey.csv"]
    assert "UTF-8" in bad["zz_binary.csv"] and "already counted from r00.csv" in bad["zz_copy.csv"]
    assert "not an image of question 1" in bad["zz_bad_choice.csv"]
    # 10/20 against chance 0.25: significantly above; 0/20: significantly below.
    assert table.loc["resnet9", "p_above_chance"] < 0.05 < table.loc["resnet9", "p_below_chance"]
    assert table.loc["unet256", "p_below_chance"] < 0.01
    assert "| resnet9 | 20 | 10 | 50.0% |" in scores_markdown(scores.table)


def test_wilson_interval_and_p_values_match_the_formulas():
    spotted, answers = 37, 250  # the method's U-Net figure is about this rate (14.8%)
    summary = binomial_summary(spotted, answers)
    p_hat, z = spotted / answers, 1.959963984540054
    centre = (p_hat + z * z / (2 * answers)) / (1 + z * z / answers)
    half = z / (1 + z * z / answers) * math.sqrt(p_hat * (1 - p_hat) / answers + z * z / (4 * answers ** 2))
    assert summary["ci_low"] == pytest.approx(centre - half) and summary["ci_high"] == pytest.approx(centre + half)
    tail_below = sum(math.comb(answers, k) * 0.25 ** k * 0.75 ** (answers - k) for k in range(spotted + 1))
    assert summary["p_below_chance"] == pytest.approx(tail_below)
    assert summary["p_above_chance"] == pytest.approx(1 - tail_below + math.comb(answers, spotted)
                                                     * 0.25 ** spotted * 0.75 ** (answers - spotted))
    assert summary["ci_high"] < 0.25  # below chance, as the method reported
    assert math.isnan(binomial_summary(0, 0)["rate"])


def test_score_needs_a_key_and_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the survey kit first"):
        score_survey(tmp_path, tmp_path / "missing.json")
    (tmp_path / "key.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="key.json is not a valid key"):
        score_survey(tmp_path, tmp_path / "key.json")


def _tiles_table(root, n_paintings=4, per_painting=3, size=32):
    rng = np.random.default_rng(1)
    rows = []
    for p in range(n_paintings):
        for t in range(per_painting):
            color = smooth_tile(rng, size)
            rel = f"dataset/tiles/p{p}/{t}"
            imaging.save_image(root / f"{rel}_color.png", color)
            imaging.save_image(root / f"{rel}_gray.png", imaging.luma_bt601(color))
            rows.append({"tile_id": f"p{p}_{t}", "painting_id": f"p{p}", "split": "test_color",
                         "color_path": f"{rel}_color.png", "gray_path": f"{rel}_gray.png"})
    rows.append({"tile_id": "train", "painting_id": "px", "split": "train", "color_path": "x", "gray_path": "x"})
    return pd.DataFrame(rows)


def write_tiny_generator(path, backbone="resnet9", color_space="rgb", seed=0):
    torch.manual_seed(seed)
    config = tiny_config(backbone=backbone, color_space=color_space, ngf=4, tile_size=32)
    net = build_model_generator(config)
    save_torch_atomic({"format": GENERATOR_FORMAT, "generator": net.state_dict(), "config": config.to_dict(),
                       "epoch": 3, "data_fingerprint": "test"}, path)
    return path


def test_survey_sources_split_paintings_and_colorize(tmp_path):
    tiles = _tiles_table(tmp_path)
    real, gray = select_survey_tiles(tiles, 2, ["resnet9", "resnet9-lab"], seed=0)
    assert len(real) == 6 and len(gray) == 2 and set(gray["variant"]) == {"resnet9", "resnet9-lab"}
    assert not set(real["painting_id"]) & set(gray["painting_id"]) and "px" not in set(real["painting_id"])
    assert real["painting_id"].nunique() == 3  # round-robin over the real pool
    checkpoints = {"resnet9": write_tiny_generator(tmp_path / "g_rgb.pt"),
                   "resnet9-lab": write_tiny_generator(tmp_path / "g_lab.pt", color_space="lab")}
    generated = colorize_survey_tiles(gray, checkpoints, tmp_path / "out", base_dir=tmp_path)
    assert list(generated["variant"]) == sorted(gray["variant"])
    for row in generated.itertuples():
        rgb = imaging.decode_image(row.path)
        assert rgb.shape == (32, 32, 3)
    lab = imaging.decode_image(generated[generated["variant"] == "resnet9-lab"]["path"].iloc[0])
    source = gray[gray["variant"] == "resnet9-lab"].iloc[0]
    # The lab variant keeps the input's lightness: the output's luma stays close to the gray tile.
    expected = imaging.decode_image(tmp_path / source["gray_path"])[..., 0].astype(int)
    assert np.abs(imaging.luma_bt601(lab).astype(int) - expected).mean() < 6
    with pytest.raises(ValueError, match="at least 2 paintings"):
        select_survey_tiles(tiles[tiles["painting_id"] == "p0"], 1, ["resnet9"])
    with pytest.raises(ValueError, match="ask fewer questions"):
        select_survey_tiles(tiles, 5, ["resnet9"])


def test_survey_fakes_from_a_reference_pix2pix_generator(tmp_path):
    """A generator trained by junyanz/pytorch-CycleGAN-and-pix2pix (latest_net_G.pth) colors the survey too."""
    from lpd_pipeline.models.networks import ResnetGenerator
    torch.manual_seed(0)
    torch.save(ResnetGenerator(1, 3, ngf=4, norm="batch", use_dropout=True, n_blocks=9).state_dict(),
               tmp_path / "latest_net_G.pth")
    tiles = _tiles_table(tmp_path)
    _, gray = select_survey_tiles(tiles, 1, ["resnet9"], seed=0)
    generated = colorize_survey_tiles(gray, {"resnet9": tmp_path / "latest_net_G.pth"}, tmp_path / "out",
                                      base_dir=tmp_path)
    assert imaging.decode_image(generated["path"].iloc[0]).shape == (32, 32, 3)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    from lpd_pipeline.training.checkpoints import CheckpointError
    with pytest.raises(CheckpointError, match="bad.pth"):
        colorize_survey_tiles(gray, {"resnet9": tmp_path / "bad.pth"}, tmp_path / "out", base_dir=tmp_path)
