"""Typed settings (lpd_pipeline.config): validation naming the field, JSON round trip, generated CLI flags, and
the Dagster config classes generated from them (lpd_pipeline.defs.settings)."""

import argparse
import re
import subprocess
import sys
from typing import Literal

import dagster as dg
import pydantic
import pytest
from pydantic import Field

from lpd_pipeline.config import ConfigError, Settings
from lpd_pipeline.curation import filters, kind
from lpd_pipeline.curation.dataset import CurationConfig
from lpd_pipeline.defs.resources import CurationResource
from lpd_pipeline.defs.settings import settings_config
from lpd_pipeline.training.config import TrainConfig
from lpd_pipeline_tests.conftest import REPO_ROOT


class Demo(Settings):
    """A small stage's settings."""

    mode: Literal["fast", "exact"] = Field("exact", description="how to compute")
    size: int = Field(64, ge=8, description="tile side")
    gain: float = Field(0.5, gt=0, description="a 100% made-up gain")
    enabled: bool = Field(True, description="on or off")
    limit: int | None = Field(None, description="at most this many")
    tags: dict[str, float] = Field(default_factory=dict, description="free weights")


# ---- core model -------------------------------------------------------------------------------------------
def test_values_are_strict_and_errors_name_the_field():
    for values, needle in [({"mode": "slow"}, "Demo.mode='slow': input should be 'fast' or 'exact'"),
                           ({"size": 4}, "Demo.size=4: input should be greater than or equal to 8"),
                           ({"enabled": "yes"}, "Demo.enabled='yes'"),
                           ({"size": "64"}, "Demo.size='64'"),
                           ({"size": True}, "Demo.size=True"),
                           ({"colour": 1}, "unknown Demo field(s) ['colour']")]:
        with pytest.raises(ConfigError) as error:
            Demo(**values)
        assert needle in str(error.value)
    with pytest.raises(ConfigError, match="Demo.gain"):
        Demo.model_validate({"gain": 0})


def test_frozen_replace_and_json_round_trip():
    demo = Demo(limit=3, tags={"a": 1.5})
    with pytest.raises(pydantic.ValidationError):
        demo.size = 128
    bigger = demo.replace(size=128)
    assert (bigger.size, demo.size, bigger.limit) == (128, 64, 3)
    assert Demo.from_json(bigger.to_json()) == bigger
    assert Demo.from_dict({"size": 32.0}).size == 32  # JSON's one number type
    with pytest.raises(ConfigError, match="Demo.size=32.5"):
        Demo.from_dict({"size": 32.5})
    with pytest.raises(ConfigError, match="not valid JSON"):
        Demo.from_json("{nope")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        Demo.from_json("[1]")


def test_cli_flags_are_generated_from_the_fields():
    parser = argparse.ArgumentParser()
    Demo.add_cli_arguments(parser, default_text={"limit": "no limit"})
    help_text = parser.format_help()
    for shown in ("--mode {fast,exact}", "how to compute (default 'exact')", "--enabled, --no-enabled",
                  "on or off (default True)", "a 100% made-up gain (default 0.5)", "(default no limit)",
                  "--tags JSON"):
        assert shown in " ".join(help_text.split()), shown
    # Unset flags keep the lower layer; set ones replace it.
    base = Demo(size=32, enabled=False)
    layered = Demo.from_cli(parser.parse_args(["--mode", "fast", "--enabled", "--tags", '{"x": 2}']), base=base)
    assert (layered.mode, layered.size, layered.enabled, layered.tags) == ("fast", 32, True, {"x": 2.0})
    assert Demo.from_cli(parser.parse_args([])) == Demo()
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "slow"])
    with pytest.raises(ConfigError, match="Demo.size=2"):
        Demo.from_cli(parser.parse_args(["--size", "2"]))


def test_train_help_shows_every_field_with_its_default():
    result = subprocess.run([sys.executable, "-m", "lpd_pipeline.train", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    defaults = TrainConfig()
    # One block per option: from its flag to the next line that starts another option.
    blocks = [" ".join(block.split()) for block in re.split(r"\n  (?=-)", result.stdout)]
    for name in TrainConfig.model_fields:
        flag = "--" + name.replace("_", "-")
        block = next((b for b in blocks if b.startswith(flag + " ") or b.startswith(flag + ",")), None)
        assert block is not None, flag
        shown = ("the size of the training tiles" if name == "tile_size" else repr(getattr(defaults, name)))
        assert f"(default {shown}" in block, block
    assert "--error-file" not in result.stdout


def test_curation_config_thresholds_stay_per_filter():
    config = CurationConfig(thresholds={"blur": 0.7}, kind_rule={"chroma_threshold": 60})
    assert isinstance(config.thresholds, filters.FilterThresholds) and config.thresholds.blur == 0.7
    assert config.thresholds.seal == filters.FilterThresholds().seal
    assert config.kind_rule == kind.KindRule(chroma_threshold=60.0)
    assert CurationConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match=r"CurationConfig.thresholds=.*unknown FilterThresholds field\(s\) \['blurr'\]"):
        CurationConfig(thresholds={"blurr": 0.7})
    with pytest.raises(ConfigError, match="blur='x': input should be a valid number"):
        CurationConfig(thresholds=filters.FilterThresholds(blur="x"))


# ---- Dagster config generated from a model ----------------------------------------------------------------
class PlainSettings(pydantic.BaseModel):
    """Another stage's settings, a plain pydantic model."""

    metric: Literal["l1", "lpips"] = Field("l1", description="what to score")
    every: int = Field(5, ge=1, description="score every this many epochs")
    names: list[str] = Field(default_factory=lambda: ["a"], description="what to score")
    split: Literal["test_color", "test_ink"] | None = Field(None, description="one split, or all")
    sizes: tuple[int, ...] = Field((256,), description="tile sizes")


class RunConfig(settings_config(PlainSettings)):
    dry_run: bool = Field(False, description="run-only field beside the settings")


def test_generated_config_has_the_model_fields_with_defaults_and_builds_the_model():
    schema = RunConfig.to_fields_dict()
    assert set(schema) == {"metric", "every", "names", "split", "sizes", "dry_run"}
    assert schema["every"].default_value == 5 and schema["every"].description == "score every this many epochs"
    seen = {}

    @dg.asset
    def scored(config: RunConfig) -> None:
        seen["settings"] = config.settings()
        seen["dry_run"] = config.dry_run

    run = dg.materialize([scored], run_config={"ops": {"scored": {"config": {
        "every": 2, "dry_run": True, "split": "test_ink", "sizes": [128, 256]}}}})
    assert run.success and seen["dry_run"] is True
    assert seen["settings"] == PlainSettings(every=2, split="test_ink", sizes=(128, 256))
    refused_split = dg.materialize([scored], run_config={"ops": {"scored": {"config": {"split": "train"}}}},
                                   raise_on_error=False)
    failure = refused_split.get_step_failure_events()[0].event_specific_data
    assert "PlainSettings.split='train'" in failure.user_failure_data.description
    refused = dg.materialize([scored], run_config={"ops": {"scored": {"config": {"every": 0}}}},
                             raise_on_error=False)
    failure = refused.get_step_failure_events()[0].event_specific_data
    assert "PlainSettings.every=0: input should be greater than or equal to 1" in failure.user_failure_data.description
    with pytest.raises(dg.DagsterInvalidConfigError, match="metric"):
        dg.materialize([scored], run_config={"ops": {"scored": {"config": {"metric": "psnr"}}}})
    with pytest.raises(ValueError, match="no field"):
        settings_config(PlainSettings, exclude=("nope",))


def test_curation_resource_is_generated_from_curation_config():
    assert CurationResource().to_config() == CurationConfig()
    fields = CurationResource.to_fields_dict()
    assert set(fields) == set(CurationConfig.model_fields)
    # The run config of today's saved jobs (partial per-filter thresholds) still fits.
    resource = CurationResource(tile_size=32, thresholds={"blur": 0.7}, kind_overrides={"a.png": "ink"})
    config = resource.to_config()
    assert config.thresholds == filters.FilterThresholds(blur=0.7) and config.kind_overrides == {"a.png": "ink"}
    with pytest.raises(dg.Failure, match="CurationConfig.tile_size=16"):
        CurationResource(tile_size=16).to_config()


def test_training_run_config_generated_from_train_config():
    from lpd_pipeline.defs.assets.training import TrainingRunConfig

    from lpd_pipeline.models.recipes import RECIPE_FIELDS

    fields = TrainingRunConfig.to_fields_dict()
    # The recipe's fields belong to the partition (model variant); color_space stays as a deprecated key.
    expected = set(TrainConfig.model_fields) - set(RECIPE_FIELDS) - {"tile_size"}
    assert expected | {"restart", "max_epochs_this_run", "launcher", "extra", "color_space"} == set(fields)
    assert fields["lr"].default_value == TrainConfig().lr and fields["n_epochs"].default_value == 100
    built = TrainingRunConfig(ngf=8, deterministic=False).train_config("resnet9-lab", 32)
    assert built == TrainConfig(backbone="resnet9", color_space="lab", tile_size=32, ngf=8, deterministic=False)


def test_saved_run_configs_with_todays_keys_still_work_with_a_deprecation_warning():
    from lpd_pipeline.defs.assets.training import TrainingRunConfig

    old = TrainingRunConfig(color_space="rgb", ngf=8, extra={"n_layers_d": 2, "num_workers": 0})
    with pytest.warns(DeprecationWarning) as warned:
        built = old.train_config("unet256", 32)
    messages = " ".join(str(w.message) for w in warned)
    assert "'color_space' is deprecated" in messages and "'extra' is deprecated" in messages
    assert (built.n_layers_d, built.ngf, built.color_space, built.backbone) == (2, 8, "rgb", "unet256")
    with pytest.raises(dg.Failure, match="unknown TrainConfig field"):
        TrainingRunConfig(extra={"lamda_l1": 3}).train_config("unet256", 32)
    with pytest.raises(dg.Failure, match="contradicts the partition"):
        TrainingRunConfig(color_space="lab").train_config("unet256", 32)

