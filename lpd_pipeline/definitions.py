"""The Dagster Definitions of lpd-pipeline (``dagster dev`` / ``dagster job execute -m lpd_pipeline``)."""

import dagster as dg

from lpd_pipeline.defs.assets.dataset import DATASET_ASSETS
from lpd_pipeline.defs.assets.reports import REPORT_ASSETS, REPORT_JOBS
from lpd_pipeline.defs.assets.training import TRAINING_ASSETS
from lpd_pipeline.defs.checks import DATASET_CHECKS
from lpd_pipeline.defs.jobs import JOBS
from lpd_pipeline.defs.resources import (
    CurationResource,
    PaintingSourcesResource,
    ParquetIOManager,
    StorageResource,
)
from lpd_pipeline.defs.schedules import SCHEDULES
from lpd_pipeline.defs.sensors import SENSORS

_storage = StorageResource.from_env()

defs = dg.Definitions(
    assets=[*DATASET_ASSETS, *TRAINING_ASSETS, *REPORT_ASSETS],
    asset_checks=[*DATASET_CHECKS],
    jobs=[*JOBS, *REPORT_JOBS],
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources={
        "storage": _storage,
        "painting_sources": PaintingSourcesResource.from_env(),
        "curation_settings": CurationResource(),
        "parquet_io_manager": ParquetIOManager(storage_root=_storage.storage_root),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
)
