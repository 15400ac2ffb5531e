"""The report assets (results_page, survey_kit, survey_results) on a synthetic storage root."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from lpd_pipeline import imaging
from lpd_pipeline.defs.assets.reports import results_page, survey_kit, survey_results
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.reports.survey import read_survey_key
from lpd_pipeline_tests.test_browser import make_site_inputs
from lpd_pipeline_tests.test_survey import _tiles_table, _write_answers, write_tiny_generator

VARIANTS = ("resnet9", "resnet9-lab")


def _upstream(root):
    """What colorized_masterpieces, backbone_comparison and tile_pairs would have written."""
    (root / "renders").mkdir()
    inputs = make_site_inputs(root / "renders")
    renders = inputs["renders"].copy()
    checkpoints = {v: write_tiny_generator(root / "training" / v / "generator.pt", color_space=space)
                   for v, space in zip(VARIANTS, ("rgb", "lab"))}
    renders["variant"] = renders["variant"].map(dict(zip(("resnet9", "unet256"), VARIANTS)))
    renders["checkpoint"] = renders["variant"].map(lambda v: str(checkpoints[v]))
    renders["input_path"] = [str(root / "renders" / p) for p in renders["input_path"]]  # absolute paths
    renders["output_path"] = [f"renders/{p}" for p in renders["output_path"]]  # relative to the storage root
    renders.to_parquet(root / "renders" / "masterpieces.parquet")
    (root / "reports").mkdir()
    pd.DataFrame({"variant": list(VARIANTS), "best_epoch": [5, 5], "fid": [11.5, 9.25]}).to_csv(
        root / "reports" / "comparison.csv", index=False)
    pd.DataFrame({"variant": list(VARIANTS), "epoch": [5, 5], "fid": [11.5, 9.25]}).to_csv(
        root / "reports" / "metrics_by_epoch.csv", index=False)
    imaging.save_image(root / "reports" / "fid.png", imaging.decode_image(root / "renders" / "fid.png"))
    imaging.save_image(root / "evaluation" / "resnet9" / "samples" / "epoch_0005.png",
                       imaging.decode_image(root / "renders" / "sheet.png"))
    (root / "dataset").mkdir()
    _tiles_table(root, n_paintings=5, per_painting=3).to_parquet(root / "dataset" / "tiles.parquet")


def _run(root, assets, run_config=None):
    return dg.materialize(assets, resources={"storage": StorageResource(storage_root=str(root))},
                          run_config=run_config or {}, raise_on_error=False)


def _metadata(result, key):
    events = result.asset_materializations_for_node(key)
    return events[-1].metadata


def test_results_page_and_survey_assets(storage_root):
    _upstream(storage_root)
    outside = storage_root.parent / "secret.png"
    imaging.save_image(outside, imaging.decode_image(storage_root / "renders" / "fid.png"))
    (storage_root / "reports" / "linked.png").symlink_to(outside)  # a link out of the storage: not published
    result = _run(storage_root, [results_page, survey_kit, survey_results], {"ops": {
        "survey_kit": {"config": {"questions": 3, "size": 32}}}})
    # survey_results has no answers yet: a clear failure, the other two materialized.
    assert not result.success
    page = _metadata(result, "results_page")
    assert page["url"].value == (storage_root / "reports" / "site" / "index.html").as_uri()
    assert page["paintings"].value == 2 and page["outputs"].value == 4 and "data:image/png" in page["preview"].value
    html = (storage_root / "reports" / "site" / "index.html").read_text()
    assert "resnet9-lab" in html and "best epoch" in html and "fid" in html and "linked" not in html
    assert len(list((storage_root / "reports" / "site" / "plots").iterdir())) == 1
    kit = _metadata(result, "survey_kit")
    assert kit["questions"].value == 3 and set(kit["variants"].value) == set(VARIANTS)
    assert "data:image/png" in kit["preview"].value
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "survey_answers" in str(failure.event_specific_data.error) and "does not exist" in str(
        failure.event_specific_data.error)

    key_path = storage_root / "reports" / "survey_key.json"
    assert not (storage_root / "reports" / "survey" / "survey_key.json").exists()
    key = read_survey_key(key_path)
    answers = storage_root / "reports" / "survey_answers"
    answers.mkdir()
    _write_answers(answers / "a.csv", key, "r1", {1, 2, 3})
    _write_answers(answers / "b.csv", key, "r2", set())
    (answers / "c.csv").write_text("garbage\n")
    result = _run(storage_root, [survey_results])
    assert result.success
    scores = _metadata(result, "survey_results")
    assert scores["files_scored"].value == 2 and "c\\.csv: missing column" in scores["files_left_out"].value
    table = pd.read_csv(storage_root / "reports" / "survey_results.csv").set_index("variant")
    assert table.loc["all", "answers"] == 6 and table.loc["all", "fakes_spotted"] == 3

    # A new kit would orphan these answers: the published one is kept unless asked, and then its key is kept.
    config = {"ops": {"survey_kit": {"config": {"questions": 3, "size": 32}}}}
    page = (storage_root / "reports" / "survey" / "index.html").read_text()
    result = _run(storage_root, [survey_kit], config)
    assert result.success and "replace_answered" in _metadata(result, "survey_kit")["kept"].value
    assert read_survey_key(key_path)["survey_id"] == key["survey_id"]
    assert (storage_root / "reports" / "survey" / "index.html").read_text() == page
    config["ops"]["survey_kit"]["config"]["replace_answered"] = True
    assert _run(storage_root, [survey_kit], config).success
    assert read_survey_key(key_path)["survey_id"] != key["survey_id"]
    archived = storage_root / "reports" / "survey_keys" / f"{key['survey_id']}.json"
    assert read_survey_key(archived) == key


@pytest.mark.parametrize("missing,upstream", [("renders/masterpieces.parquet", "colorized_masterpieces"),
                                              ("reports/comparison.csv", "backbone_comparison")])
def test_missing_upstream_names_what_to_materialize(storage_root, missing, upstream):
    _upstream(storage_root)
    (storage_root / missing).unlink()
    result = _run(storage_root, [results_page])
    assert not result.success
    error = str([e for e in result.all_events if e.is_step_failure][0].event_specific_data.error)
    assert missing.split("/")[-1] in error and f"materialize {upstream} first" in error


def test_results_page_reads_the_evaluation_modules_files(storage_root):
    """backbone_comparison.csv and per-variant evaluations.parquet stand in for comparison.csv and
    metrics_by_epoch.csv."""
    _upstream(storage_root)
    (storage_root / "reports" / "comparison.csv").rename(storage_root / "reports" / "backbone_comparison.csv")
    (storage_root / "reports" / "metrics_by_epoch.csv").unlink()
    pd.DataFrame({"epoch": [10, 5, 15], "fid": [30.5, 40.25, 1e9], "lpips": [0.3, 0.4, 0.0],
                  "status": ["ok", "ok", "skipped"]}).to_parquet(
        storage_root / "evaluation" / "resnet9" / "evaluations.parquet")
    result = _run(storage_root, [results_page])
    assert result.success
    html = (storage_root / "reports" / "site" / "index.html").read_text()
    assert "resnet9: every scored epoch" in html and "40.25" in html and "30.5" in html
    assert "1e+09" not in html  # skipped rows are not scores



def test_definitions_register_the_report_assets():
    from lpd_pipeline.definitions import defs
    job = defs.resolve_job_def("render_masterpieces")  # the pages are built with the renders
    assert {"results_page", "survey_kit"} <= {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    graph = defs.resolve_asset_graph()
    for key in ("results_page", "survey_kit", "survey_results"):
        assert graph.get(dg.AssetKey(key)).group_name == "render"
    assert dg.AssetKey("colorized_masterpieces") in graph.get(dg.AssetKey("results_page")).parent_keys
