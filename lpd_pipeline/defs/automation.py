"""Declarative automation: a new training result is evaluated, a new best checkpoint is rendered and published.

Rule: the conditions live on the assets (``automation_condition=AFTER_UPSTREAM_UPDATE``) and do nothing until
the one sensor that evaluates them, ``lpd_automation``, is turned on (Automation page of the UI, or
``dagster sensor start lpd_automation``); it is stopped by default, so nothing runs by itself on a fresh install.

What it does once on, with ``dagster-daemon`` running (``make ui`` / ``dagster dev`` start it):

- a materialization of ``trained_generator[v]`` requests ``checkpoint_evaluations[v]`` (same partition), which
  requests ``best_checkpoint[v]``;
- a new dataset (``tile_pairs``: a refresh by the weekly schedule or the raw-folder sensor) requests
  ``checkpoint_evaluations`` of every variant that has been trained: the test set may have changed (evaluation
  re-scores only when its fingerprint did, and refuses checkpoints trained on tiles now in a test split);
- an update of ``best_checkpoint`` (any variant) requests ``backbone_comparison`` and, once the blocking check
  ``best_checkpoint_usable`` has passed, ``colorized_masterpieces``; those two request ``results_page``.

Only the final materialization of a training run counts: the training process reports one materialization
through Dagster Pipes when it ends, and logs the checkpoints it writes on the way (not as asset events), so a long
run is evaluated once, after it, and evaluation never competes with training for the GPU. Every checkpoint of the
run is scored then (evaluation scores each checkpoint once, by content). Assets that a person starts on purpose
(ingest, curation, training, the survey kit and its scores) carry no condition: a new dataset never starts a
training by itself.
"""

import dagster as dg

AUTOMATION_SENSOR = "lpd_automation"

# Requested once after any upstream asset (or a partition of it) was updated or is requested in the same tick;
# held while an upstream run or this asset is in progress, and until upstream blocking checks have passed. A
# missing asset is not created by it: the first materialization is a person's (make demo, a job, the UI).
AFTER_UPSTREAM_UPDATE = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("after_upstream_update")

# The variant-partitioned assets: a variant whose upstream partition is missing (never trained) is not requested,
# so a new dataset re-scores the trained variants only.
AFTER_UPSTREAM_UPDATE_OF_VARIANT = (
    AFTER_UPSTREAM_UPDATE & ~dg.AutomationCondition.any_deps_missing()
).with_label("after_upstream_update_of_variant")

lpd_automation = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    # Every asset: only those with a condition are ever requested; others added later are covered too.
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Re-evaluate after training, re-render and re-publish after a new best checkpoint "
                "(declarative automation; stopped by default, docs/OPERATIONS.md).",
)
