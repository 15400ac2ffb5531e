"""EvaluationSettings and RenderSettings are lpd_pipeline.config.Settings models like TrainConfig and
CurationConfig: strict, frozen, JSON round trip, ConfigError naming the field; the colorize and metrics CLIs
take their flags from them (one declaration per setting)."""

from __future__ import annotations

import argparse

import pydantic
import pytest

from lpd_pipeline import colorize
from lpd_pipeline.config import ConfigError, Settings
from lpd_pipeline.evaluation.settings import EvaluationSettings
from lpd_pipeline.metrics import cli as metrics_cli
from lpd_pipeline.rendering.settings import RenderSettings

MODELS = [EvaluationSettings, RenderSettings]


@pytest.mark.parametrize("model", MODELS)
def test_settings_base_json_round_trip_and_frozen(model):
    assert issubclass(model, Settings)
    changed = {EvaluationSettings: {"bootstrap": 5, "selection_rule": "lpips"},
               RenderSettings: {"tile": 64, "window": "gaussian", "keep_luminance": False}}[model]
    settings = model(**changed)
    assert model.from_json(settings.to_json()) == settings
    assert model.from_dict(settings.to_dict()) == settings
    with pytest.raises(pydantic.ValidationError):  # frozen: replace() makes a validated copy
        setattr(settings, next(iter(changed)), None)
    assert settings.replace(device="cuda").device == "cuda"


@pytest.mark.parametrize("model, values, field", [
    (EvaluationSettings, {"bootstrap": "200"}, "bootstrap"),         # strict: no string for an int
    (EvaluationSettings, {"batch_size": 0}, "batch_size"),
    (EvaluationSettings, {"seeds": 1}, "seeds"),                     # unknown key
    (RenderSettings, {"keep_luminance": "yes"}, "keep_luminance"),   # strict: no "yes" for a bool
    (RenderSettings, {"overlap": 1.0}, "overlap"),
    (RenderSettings, {"mode": "smooth"}, "mode"),
])
def test_bad_values_raise_config_error_naming_the_field(model, values, field):
    with pytest.raises(ConfigError, match=f"{model.__name__}.*{field}"):
        model(**values)
    with pytest.raises(ConfigError, match=field):
        model.from_json(__import__("json").dumps(values))


def test_json_numbers_accepted_for_int_fields():
    assert EvaluationSettings.from_json('{"bootstrap": 20.0}').bootstrap == 20
    assert RenderSettings.from_json('{"overlap": 0}').overlap == 0.0


def _colorize_settings(argv: list[str]) -> RenderSettings:
    return RenderSettings.from_cli(colorize.build_parser().parse_args(["in.png", "out.png", *argv]))


def test_colorize_flags_are_generated_from_render_settings_with_todays_names():
    assert _colorize_settings([]) == RenderSettings()
    settings = _colorize_settings([
        "--mode", "naive", "--tile", "64", "--overlap", "0.25", "--window", "gaussian", "--no-keep-luminance",
        "--scale", "0.5", "--consistency", "none", "--anchor-size", "96", "--batch-size", "4", "--device", "cpu",
        "--max-pixels", "1000", "--window-floor", "0.05"])
    assert settings == RenderSettings(mode="naive", tile=64, overlap=0.25, window="gaussian", keep_luminance=False,
                                      scale=0.5, consistency="none", anchor_size=96, batch_size=4, device="cpu",
                                      max_pixels=1000, window_floor=0.05)
    # Every RenderSettings field has its flag, and nothing else was hand-written for them.
    flags = {a.dest for a in colorize.build_parser()._actions}
    assert set(RenderSettings.model_fields) <= flags
    with pytest.raises(SystemExit):
        colorize.build_parser().parse_args(["in.png", "out.png", "--window", "box"])  # choices from Literal


def test_colorize_reports_invalid_settings_naming_the_field(tmp_path, capsys):
    source = tmp_path / "in.png"
    source.write_bytes(b"")
    assert colorize.main([str(source), str(tmp_path / "o.png"), "--scale", "2"]) == 2
    assert "RenderSettings.scale=2.0" in capsys.readouterr().err


def test_metrics_cli_flags_are_evaluation_settings_fields(tmp_path, capsys):
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    assert metrics_cli.main([str(real), str(fake), "--bootstrap", "-1"]) == 2
    assert "EvaluationSettings.bootstrap=-1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        metrics_cli.main([str(real), str(fake), "--batch-size", "3"])  # not a flag of this command
    assert "unrecognized arguments: --batch-size" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    EvaluationSettings.add_cli_arguments(parser, exclude=set(EvaluationSettings.model_fields)
                                         - set(metrics_cli.CLI_SETTINGS))
    assert EvaluationSettings.from_cli(parser.parse_args(["--seed", "3"])) == EvaluationSettings(seed=3)
