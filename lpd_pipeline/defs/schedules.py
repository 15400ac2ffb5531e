"""Schedules. Off by default: a museum team turns them on in the UI once sources are configured."""

import dagster as dg

from lpd_pipeline.defs.jobs import prepare_dataset

weekly_dataset_refresh = dg.ScheduleDefinition(
    name="weekly_dataset_refresh",
    job=prepare_dataset,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",  # stated, not left to the server's zone; change it here for local time
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-curate every Monday 03:00 UTC: picks up new paintings (only new or changed files are decoded "
                "and scored). With the lpd_automation sensor on, the trained variants are then re-scored on the "
                "new test set; otherwise run evaluate_checkpoints after it (docs/OPERATIONS.md).",
)

SCHEDULES = [weekly_dataset_refresh]
