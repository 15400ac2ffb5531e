"""Dagster resources: where data lives, where paintings come from, how they are curated."""


import os
from pathlib import Path

import dagster as dg
import pandas as pd

from lpd_pipeline.files import write_parquet_atomic
from lpd_pipeline.curation.dataset import CurationConfig
from lpd_pipeline.defs.settings import settings_config
from lpd_pipeline.settings import StorageLayout, default_storage_root


class StorageResource(dg.ConfigurableResource):
    """The storage root. Default: ``LPD_STORAGE`` or ``./storage``."""

    storage_root: str

    @classmethod
    def from_env(cls) -> "StorageResource":
        return cls(storage_root=str(default_storage_root()))

    def layout(self) -> StorageLayout:
        return StorageLayout(Path(self.storage_root).resolve())


class PaintingSourcesResource(dg.ConfigurableResource):
    """Where raw paintings come from. With nothing set, the embedded demo paintings are generated and used."""

    raw_dir: str = ""  # a local folder, scanned recursively (LPD_RAW_DIR)
    url_manifest: str = ""  # a CSV of URLs (url, title, artist, date, medium, license, kind)
    met_query: str = ""  # a Met Museum Open Access search, e.g. "landscape handscroll"
    met_limit: int = 50
    met_max_objects: int = 0  # object records to look at, at most (0: 20 x met_limit)
    download_timeout_s: float = 30.0
    download_max_mb: int = 100

    @classmethod
    def from_env(cls) -> "PaintingSourcesResource":
        return cls(raw_dir=os.environ.get("LPD_RAW_DIR", ""))

    @property
    def uses_demo(self) -> bool:
        return not (self.raw_dir or self.url_manifest or self.met_query)

    def describe(self) -> str:
        """The configured sources in words, for messages."""
        if self.uses_demo:
            return "the demo paintings"
        parts = [f"folder {self.raw_dir}" if self.raw_dir else "",
                 f"URL manifest {self.url_manifest}" if self.url_manifest else "",
                 f"Met search {self.met_query!r}" if self.met_query else ""]
        return ", ".join(part for part in parts if part)


class CurationResource(settings_config(CurationConfig, base=dg.ConfigurableResource)):
    """Curation knobs: the fields of lpd_pipeline.curation.dataset.CurationConfig (thresholds per filter)."""

    def to_config(self) -> CurationConfig:
        return self.settings()


def asset_table_path(storage_root: str | Path, asset_key: dg.AssetKey, partition_key: str | None = None) -> Path:
    """Where ParquetIOManager keeps an asset's table: ``<storage>/assets/<key>[/<partition>].parquet``."""
    parts = list(asset_key.path)
    if partition_key is not None:
        parts = [*parts, partition_key]
    parts[-1] = f"{parts[-1]}.parquet"
    return StorageLayout(Path(storage_root).resolve()).path("assets", *parts)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame assets as Parquet under ``<storage>/assets/`` (tables, never pickled tensors)."""

    storage_root: str

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, not a DataFrame")
        partition = context.partition_key if context.has_partition_key else None
        path = asset_table_path(self.storage_root, context.asset_key, partition)
        write_parquet_atomic(obj, path)
        context.add_output_metadata({"table_path": dg.MetadataValue.path(str(path)), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = asset_table_path(self.storage_root, context.asset_key, partition)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: materialize {context.asset_key.to_user_string()} first")
        return pd.read_parquet(path)


# The one place resources are registered (keys used by the assets, checks and jobs of every defs module).
_storage = StorageResource.from_env()
defs = dg.Definitions(
    resources={
        "storage": _storage,
        "painting_sources": PaintingSourcesResource.from_env(),
        "curation_settings": CurationResource(),
        "parquet_io_manager": ParquetIOManager(storage_root=_storage.storage_root),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
)
