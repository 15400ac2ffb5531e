"""One run over several variants (single-run backfill): every variant is worked on, a failing one does not stop
the others, and the step then fails naming it."""

import dagster as dg

from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS, for_each_variant
from lpd_pipeline.models.options import PAPER_VARIANTS

RANGE = {"dagster/asset_partition_range_start": PAPER_VARIANTS[0],
         "dagster/asset_partition_range_end": PAPER_VARIANTS[-1]}


def _asset(fail: set[str], seen: list[str]):
    @dg.asset(partitions_def=VARIANT_PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
    def per_variant(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        def one(variant: str) -> dict:
            seen.append(variant)
            if variant in fail:
                raise dg.Failure(description=f"no data for {variant}")
            return {"epochs": 2}

        return dg.MaterializeResult(metadata=for_each_variant(context, "work", one))

    return per_variant


def _run(asset, **kwargs):
    job = dg.define_asset_job("j", selection=[asset], partitions_def=VARIANT_PARTITIONS)
    defs = dg.Definitions(assets=[asset], jobs=[job])
    return defs.resolve_job_def("j").execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                                        raise_on_error=False, **kwargs)


def test_a_range_run_covers_every_variant_with_prefixed_metadata():
    seen: list[str] = []
    result = _run(_asset(set(), seen), tags=RANGE)
    assert result.success and seen == list(PAPER_VARIANTS)
    events = result.get_asset_materialization_events()
    assert sorted(e.partition for e in events) == sorted(PAPER_VARIANTS)
    metadata = events[0].materialization.metadata
    assert {f"{v}/epochs" for v in PAPER_VARIANTS} <= set(metadata)


def test_a_failing_variant_does_not_stop_the_others():
    seen: list[str] = []
    result = _run(_asset({PAPER_VARIANTS[0]}, seen), tags=RANGE)
    assert not result.success and seen == list(PAPER_VARIANTS)
    failure = result.get_step_failure_events()[0].event_specific_data.user_failure_data
    assert failure.description == f"work failed for {PAPER_VARIANTS[0]}: no data for {PAPER_VARIANTS[0]}"


def test_one_partition_keeps_plain_keys_and_its_own_failure():
    seen: list[str] = []
    assert _run(_asset(set(), seen), partition_key="unet256-lab").success and seen == ["unet256-lab"]
    failed = _run(_asset({"unet256"}, []), partition_key="unet256")
    assert failed.get_step_failure_events()[0].event_specific_data.user_failure_data.description == \
        "no data for unet256"
