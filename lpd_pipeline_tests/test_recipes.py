"""Named recipes: a model variant is a recipe; its TrainConfig = paper defaults + recipe fields + run settings,
and a run config over several variants never changes what the paper's two variants are."""

from __future__ import annotations

import dagster as dg
import pytest

from lpd_pipeline.defs.assets.training import TrainingRunConfig
from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS
from lpd_pipeline.models import recipes
from lpd_pipeline.models.options import MAIN_VARIANTS, PAPER_VARIANTS, QUALITY_VARIANT, VARIANTS, parse_variant
from lpd_pipeline.training.config import TrainConfig


def test_recipes_are_the_variants_and_valid_folder_names():
    assert VARIANTS == tuple(recipes.RECIPES) and VARIANT_PARTITIONS.get_partition_keys() == list(VARIANTS)
    assert VARIANTS[:3] == MAIN_VARIANTS == ("resnet9", "unet256", QUALITY_VARIANT)  # one contiguous range
    assert set(recipes.RECIPE_FIELDS) <= set(TrainConfig.model_fields)
    for name, recipe in recipes.RECIPES.items():
        assert recipes.NAME_PATTERN.match(name) and recipe.description
        assert parse_variant(name) == (recipe.backbone, recipe.color_space)
    with pytest.raises(ValueError, match="a folder name"):
        recipes.Recipe("../up", "escapes")
    with pytest.raises(ValueError, match="run settings, not recipe fields"):
        recipes.Recipe("fast", "too fast", {"lr": 1.0})


def test_recipe_train_config_and_the_paper_variants_stay_the_method():
    # The paper's two are exactly the method's defaults with their backbone.
    assert recipes.train_config("unet256") == TrainConfig()
    assert recipes.train_config("resnet9", ngf=8) == TrainConfig(backbone="resnet9", ngf=8)
    quality = recipes.train_config(QUALITY_VARIANT, tile_size=64, ngf=8)
    assert (quality.color_space, quality.ink_augment, quality.lambda_colorfulness, quality.palette) == (
        "labcls", True, 10.0, True)
    assert (quality.tile_size, quality.ngf, quality.lr) == (64, 8, TrainConfig().lr)  # run settings apply alike
    with pytest.raises(ValueError, match="ink_augment=True: decided by the model variant 'resnet9'"):
        recipes.train_config("resnet9", ink_augment=True)
    # A checkpoint's saved config names its recipe; one that follows none names nothing.
    for name in VARIANTS:
        assert recipes.recipe_of(recipes.train_config(name, tile_size=64).to_dict()) == name
    assert recipes.recipe_of(TrainConfig(color_space="labcls", palette=True).to_dict()) is None
    assert recipes.recipe_of({"backbone": "resnet9"}) == "resnet9"  # missing fields count as their defaults


def test_one_run_config_over_the_main_range_keeps_each_variant_its_recipe():
    run = TrainingRunConfig(ngf=8, ndf=8, n_epochs=1, n_epochs_decay=1, batch_size=4, device="cpu")
    built = {v: run.train_config(v, 32) for v in MAIN_VARIANTS}
    assert built["resnet9"] == TrainConfig(backbone="resnet9", ngf=8, ndf=8, n_epochs=1, n_epochs_decay=1,
                                           batch_size=4, device="cpu", tile_size=32)
    assert built["unet256"] == built["resnet9"].replace(backbone="unet256")
    assert built[QUALITY_VARIANT] == built["unet256"].replace(**recipes.RECIPES[QUALITY_VARIANT].fields)
    # The run config has no recipe field to set; the deprecated `extra` may not change one either.
    assert not set(recipes.RECIPE_FIELDS) - {"color_space"} & set(TrainingRunConfig.model_fields)
    with pytest.warns(DeprecationWarning), pytest.raises(dg.Failure, match="decided by the model variant"):
        TrainingRunConfig(extra={"lambda_colorfulness": 5.0}).train_config("unet256", 32)
    with pytest.warns(DeprecationWarning):  # restating the recipe's own value is harmless
        assert TrainingRunConfig(extra={"palette": True}).train_config(QUALITY_VARIANT, 32).palette


def test_bench_ladder_uses_the_package_recipes():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VARIANTS["gray"] == {} and set(module.VARIANTS) == {"gray", *VARIANTS}
    assert module.VARIANTS[QUALITY_VARIANT] == dict(recipes.RECIPES[QUALITY_VARIANT].fields)
    assert set(PAPER_VARIANTS) <= set(module.VARIANTS)


def test_standalone_training_picks_the_recipe_folder(tmp_path):
    from lpd_pipeline.train import default_run_dir

    assert default_run_dir(tmp_path, recipes.train_config(QUALITY_VARIANT)) == tmp_path / "training" / QUALITY_VARIANT
    assert default_run_dir(tmp_path, TrainConfig(backbone="resnet9")) == tmp_path / "training" / "resnet9"
    # Settings that follow no recipe keep the plain backbone-space folder.
    assert default_run_dir(tmp_path, TrainConfig(color_space="lab", ink_augment=True)) == \
        tmp_path / "training" / "unet256-lab"


# Every TrainConfig field is either a recipe field (what a variant is) or a run setting (how a run trains any
# variant). A new field must be put on one side: a quality option left out of RECIPE_FIELDS would become a run
# setting that a run config applies to the paper's two variants too.
RUN_SETTINGS = {
    "norm", "ngf", "ndf", "n_layers_d", "use_dropout", "init_gain", "lambda_l1", "lr", "beta1", "beta2", "n_epochs",
    "n_epochs_decay", "batch_size", "tile_size", "checkpoint_every", "keep_every", "flip", "seed", "num_workers",
    "device", "amp", "channels_last", "compile", "cudnn_benchmark", "deterministic", "sync_batchnorm",
}


def test_every_train_config_field_is_a_recipe_field_or_a_run_setting():
    recipe_fields = set(recipes.RECIPE_FIELDS)
    assert not recipe_fields & RUN_SETTINGS
    assert set(TrainConfig.model_fields) == recipe_fields | RUN_SETTINGS, (
        "classify the new TrainConfig field(s): RECIPE_FIELDS (models/recipes.py) or a run setting (this test)")
