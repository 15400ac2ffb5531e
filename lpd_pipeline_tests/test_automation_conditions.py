"""Declarative automation (defs/automation.py): which assets the conditions request after which upstream update,
evaluated in-process against an instance that holds the upstream materializations."""

import dagster as dg
import pytest

from lpd_pipeline.defs.automation import AUTOMATION_SENSOR


@pytest.fixture(scope="module")
def defs():
    from lpd_pipeline.definitions import defs

    return defs


def _requested(result) -> set[tuple[str, str | None]]:
    """(asset, partition) of every request of one evaluation (a tick of the lpd_automation sensor)."""
    from lpd_pipeline.definitions import defs

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {(key.to_user_string(), partition) for key in keys for partition in result.get_requested_partitions(key)}


def _materialize(instance, key: str, partition: str | None = None, passed_check: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
    if passed_check:
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(key), check_name=passed_check, passed=True))


def _new_dataset(instance) -> None:
    """tile_pairs materialized and its blocking checks passed (what a prepare_dataset run leaves)."""
    _materialize(instance, "tile_pairs")
    for check in ("no_leak_across_splits", "pairs_aligned_and_luma_exact"):
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("tile_pairs"), check_name=check, passed=True))


def test_a_new_training_is_evaluated_then_rendered_and_published(defs, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert _requested(tick) == set()  # nothing materialized: nothing is created by automation
        _new_dataset(instance)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == set()  # no variant is trained: nothing to evaluate

        _materialize(instance, "trained_generator", "resnet9")
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        # That variant only; the choice follows its evaluation in the same request (one run: evaluate, choose).
        assert _requested(tick) == {("checkpoint_evaluations", "resnet9"), ("best_checkpoint", "resnet9")}

        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == set()  # handled: not requested again

        _materialize(instance, "checkpoint_evaluations", "resnet9")
        _materialize(instance, "best_checkpoint", "resnet9", passed_check="best_checkpoint_usable")
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        # Renders wait for the blocking check of the new best checkpoint; the page follows its parents.
        assert _requested(tick) == {("backbone_comparison", None), ("colorized_masterpieces", None),
                                    ("results_page", None)}

        _materialize(instance, "trained_generator", "unet256-lab")  # another variant, later
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == {("checkpoint_evaluations", "unet256-lab"), ("best_checkpoint", "unet256-lab")}


def test_a_failed_best_checkpoint_check_holds_what_follows_until_it_passes(defs, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        _materialize(instance, "best_checkpoint", "unet256")
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("best_checkpoint"), check_name="best_checkpoint_usable", passed=False))
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == set()  # nothing downstream reads an unusable best checkpoint

        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("best_checkpoint"), check_name="best_checkpoint_usable", passed=True))
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert ("colorized_masterpieces", None) in _requested(tick)  # once the check passes


def test_curation_and_training_are_never_automated_and_the_sensor_is_off_by_default(defs, tmp_path):
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert "default_automation_condition_sensor" not in {s.name for s in repository.sensor_defs}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        for key in ("raw_paintings", "tile_pairs"):
            _materialize(instance, key)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == set()  # a new dataset does not start a training by itself


def test_a_new_dataset_rescores_the_trained_variants_only(defs, tmp_path):
    """The weekly refresh (or the raw-folder sensor) writes tile_pairs: trained variants are evaluated again on
    the test set as it now is; variants never trained are left alone."""
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        _new_dataset(instance)
        for variant in ("resnet9", "unet256"):
            _materialize(instance, "trained_generator", variant)
            _materialize(instance, "checkpoint_evaluations", variant)
            _materialize(instance, "best_checkpoint", variant, passed_check="best_checkpoint_usable")
        for key in ("backbone_comparison", "colorized_masterpieces", "results_page"):
            _materialize(instance, key)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == set()  # everything up to date

        _new_dataset(instance)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
        assert _requested(tick) == {("checkpoint_evaluations", v) for v in ("resnet9", "unet256")} | {
            ("best_checkpoint", v) for v in ("resnet9", "unet256")}
