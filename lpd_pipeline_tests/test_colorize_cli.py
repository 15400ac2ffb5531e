"""``python -m lpd_pipeline.colorize``: checkpoint choice (best, else latest), files and folders, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.colorize import main
from lpd_pipeline.rendering import read_best_checkpoint, resolve_checkpoint
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training.checkpoints import checkpoint_path

from lpd_pipeline_tests.test_render import painting, write_export


def _storage_with_export(root, variant="unet256", space="rgb"):
    backbone = variant.split("-")[0]
    return write_export(root / "training" / variant / "generator.pt", backbone, space, tile=32, epoch=2)


def test_without_a_variant_the_first_one_with_a_checkpoint_is_used(storage_root, tmp_path, capsys):
    _storage_with_export(storage_root, "resnet9")
    source = tmp_path / "leaf.png"
    imaging.save_image(source, painting(40, 40))
    assert main([str(source), str(tmp_path / "x.png"), "--quiet"]) == 0
    assert "no checkpoint for unet256; using resnet9" in capsys.readouterr().err
    with Image.open(tmp_path / "x.png") as image:
        assert image.text["lpd:variant"] == "resnet9"


def test_file_to_file_with_the_latest_checkpoint(storage_root, tmp_path, capsys):
    _storage_with_export(storage_root)
    source = tmp_path / "leaf.jpg"
    imaging.save_image(source, np.dstack([painting(50, 90)] * 3))
    out = tmp_path / "leaf_colour.png"
    assert main([str(source), str(out), "--quiet", "--overlap", "0.25"]) == 0
    err = capsys.readouterr().err
    assert "using the export checkpoint" in err and "no evaluated best checkpoint yet" in err
    with Image.open(out) as image:
        assert image.size == (90, 50)
        assert image.text["lpd:variant"] == "unet256" and image.text["lpd:epoch"] == "2"
        assert json.loads(image.text["lpd:settings"])["overlap"] == 0.25


def test_best_checkpoint_is_preferred_and_must_stay_inside_the_storage(storage_root, tmp_path):
    layout = StorageLayout(storage_root)
    _storage_with_export(storage_root, "resnet9")
    epoch_file = write_export(checkpoint_path(layout.training_dir("resnet9"), 5), "resnet9", epoch=5)
    assert resolve_checkpoint(layout, "resnet9").source == "latest"  # checkpoints before the export
    best = layout.path("evaluation", "resnet9", "best_checkpoint.json")
    best.parent.mkdir(parents=True)
    best.write_text(json.dumps({"checkpoint": str(epoch_file), "epoch": 5}))
    choice = resolve_checkpoint(layout, "resnet9")
    assert (choice.source, choice.epoch, choice.path) == ("best", 5, epoch_file.resolve())
    outside = write_export(tmp_path / "elsewhere.pt", "resnet9")
    best.write_text(json.dumps({"checkpoint": str(outside), "epoch": 1}))
    assert read_best_checkpoint(layout, "resnet9") is None
    assert resolve_checkpoint(layout, "resnet9").source == "latest"


def test_folder_in_folder_out_skips_bad_files(storage_root, tmp_path, capsys):
    _storage_with_export(storage_root, "unet256-lab", "lab")
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    imaging.save_image(folder / "a.png", painting(40, 60))
    imaging.save_image(folder / "sub" / "b.tif", painting(33, 47, seed=3))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    code = main([str(folder), str(out), "--backbone", "unet256-lab", "--quiet", "--preview"])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "1 of 3 painting(s) could not be colorized" in err
    assert imaging.decode_image(out / "a.png").shape == (40, 60, 3)
    assert imaging.decode_image(out / "sub" / "b.png").shape == (33, 47, 3)
    assert (out / "a.preview.jpg").is_file()
    assert not (out / "broken.png").exists()


def test_explicit_checkpoint_and_no_checkpoint(storage_root, tmp_path, capsys):
    source = tmp_path / "leaf.png"
    imaging.save_image(source, painting(40, 40))
    assert main([str(source), str(tmp_path / "x.png"), "--quiet"]) == 2
    assert "no checkpoint for any variant (unet256, resnet9" in capsys.readouterr().err
    assert main([str(source), str(tmp_path / "x.png"), "--quiet", "--variant", "resnet9"]) == 2
    assert "no checkpoint for resnet9" in capsys.readouterr().err
    export = write_export(tmp_path / "g.pt", "resnet9")
    # OUTPUT an existing folder: <folder>/<stem>.png, never over the input itself
    assert main([str(source), str(tmp_path), "--checkpoint", str(export), "--quiet"]) == 1
    assert "refusing to overwrite the original" in capsys.readouterr().err
    (tmp_path / "outdir").mkdir()
    assert main([str(source), str(tmp_path / "outdir"), "--checkpoint", str(export), "--quiet",
                 "--no-keep-luminance", "--mode", "naive"]) == 0
    assert imaging.decode_image(tmp_path / "outdir" / "leaf.png").shape == (40, 40, 3)
    assert main([str(source), str(tmp_path / "y.png"), "--checkpoint", str(export), "--overlap", "1.5"]) == 2


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "lpd_pipeline.colorize", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert "--keep-luminance" in result.stdout and "--backbone" in result.stdout and "--scale" in result.stdout
