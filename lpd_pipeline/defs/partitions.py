"""The one partitioning of the model half: by model variant (see lpd_pipeline.models.options.VARIANTS).

Training, evaluation and best-checkpoint choice share this definition, so a variant's evaluation maps to its own
training partition one to one.
"""

import dagster as dg

from lpd_pipeline.models.options import VARIANTS

VARIANT_PARTITIONS = dg.StaticPartitionsDefinition(list(VARIANTS))
