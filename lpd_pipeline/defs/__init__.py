"""The orchestration shell: Dagster assets, checks, jobs, schedules, sensors and resources.

Everything here only wires the functional core (lpd_pipeline.curation, .sources, .training, ...) into Dagster.
"""
