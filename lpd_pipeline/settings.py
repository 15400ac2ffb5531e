"""Where things live on disk. One storage root holds every asset, checkpoint and the Dagster instance.

Environment: ``LPD_STORAGE`` (default ``./storage``) and ``LPD_RAW_DIR`` (default: the embedded demo paintings,
generated into ``<storage>/raw/demo``). Both can also be set as Dagster resource config. ``LPD_STORAGE`` is
read by :func:`default_storage_root` only, which gives the default of the Dagster ``storage`` resource
(``StorageResource.from_env``) and of the standalone training CLI's ``--storage``; every Dagster writer, the IO
manager included, takes the root from that one resource, never from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class PathEscapeError(ValueError):
    """A path would leave the storage root (``..``, absolute paths, symlinks pointing outside)."""


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result that resolves outside ``root``."""
    root_path = Path(root).resolve()
    candidate = root_path.joinpath(*parts).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise PathEscapeError(f"path {'/'.join(parts)!r} escapes the storage root {root_path}")
    return candidate


def default_storage_root() -> Path:
    """``LPD_STORAGE`` (or ``./storage``), absolute: the default root, never read behind a resource's back."""
    return Path(os.environ.get("LPD_STORAGE", "storage")).resolve()


@dataclass(frozen=True)
class StorageLayout:
    """The on-disk layout under one storage root (see README, "Data layout")."""

    root: Path

    def __post_init__(self) -> None:
        # Absolute from the start: stored paths are relative to the root, and a later chdir must not move it.
        object.__setattr__(self, "root", Path(self.root).resolve())

    def path(self, *parts: str) -> Path:
        return safe_join(self.root, *parts)

    @property
    def demo_raw_dir(self) -> Path:
        return self.path("raw", "demo")

    @property
    def downloads_dir(self) -> Path:
        return self.path("raw", "downloads")

    @property
    def dataset_dir(self) -> Path:
        return self.path("dataset")

    @property
    def tiles_table(self) -> Path:
        """The curated dataset (the table training reads): ``dataset/tiles.parquet``."""
        return self.path("dataset", "tiles.parquet")

    @property
    def paintings_table(self) -> Path:
        return self.path("dataset", "paintings.parquet")

    @property
    def rejections_table(self) -> Path:
        return self.path("dataset", "rejections.parquet")

    @property
    def tiles_dir(self) -> Path:
        return self.path("dataset", "tiles")

    @property
    def pix2pix_dir(self) -> Path:
        return self.path("dataset", "pix2pix_aligned")

    def training_dir(self, variant: str) -> Path:
        """The run directory of a model variant (``models.options.variant_key``)."""
        return self.path("training", variant)

    @property
    def dagster_home(self) -> Path:
        return self.path("dagster_home")


def raw_dir_from_env() -> Path | None:
    """``LPD_RAW_DIR`` if set, else None (meaning: use the generated demo paintings)."""
    value = os.environ.get("LPD_RAW_DIR")
    return Path(value).resolve() if value else None
