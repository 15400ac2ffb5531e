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
    """The storage root: the one place every writer (assets, checks, the IO manager) takes it from.

    Default: ``LPD_STORAGE`` or ``./storage`` (read by :meth:`from_env` only); a run may set
    ``resources.storage.config.storage_root``.
    """

    storage_root: str

    @classmethod
    def from_env(cls):
        """The storage resource of the Definitions: defaults to ``LPD_STORAGE``, configurable at launch.

        A partially configured resource, so that the IO manager, which gets this same object as its ``storage``,
        follows a root set in run config too (a fully configured nested resource would keep its own root)."""
        return cls.configure_at_launch(storage_root=str(default_storage_root()))

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
    # Downloads refuse loopback, private, link-local, multicast and reserved addresses (checked on the resolved
    # address, at every redirect) unless this is set: for an intranet mirror, or tests on 127.0.0.1.
    allow_private_addresses: bool = False

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
    """Stores DataFrame assets as Parquet under ``<storage>/assets/`` (tables, never pickled tensors).

    The root comes from the ``storage`` resource (pass the Definitions' own ``storage`` object), never from the
    environment, so a root set in run config moves every output."""

    storage: dg.ResourceDependency[StorageResource]

    def _path(self, asset_key: dg.AssetKey, partition_key: str | None) -> Path:
        return asset_table_path(self.storage.layout().root, asset_key, partition_key)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, not a DataFrame")
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        write_parquet_atomic(obj, path)
        context.add_output_metadata({"table_path": dg.MetadataValue.path(str(path)), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = self._path(context.asset_key, partition)
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
        "parquet_io_manager": ParquetIOManager(storage=_storage),
        "pipes_subprocess_client": dg.PipesSubprocessClient(),
    },
)
