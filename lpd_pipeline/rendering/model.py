"""The generator a rendering uses: which checkpoint (best, else latest), how it is loaded, how tiles become chroma.

The rule: without an explicit checkpoint a variant renders with ``<storage>/evaluation/<variant>/
best_checkpoint.json`` (written by evaluation; its ``checkpoint`` must lie inside the storage root), else with the
newest checkpoint of ``<storage>/training/<variant>/`` (else its ``generator.pt``), and says which it took. Every
file is read with ``weights_only=True``: the project's own generator exports and training checkpoints through
``training.checkpoints.generator_from_payload`` (the file read once), a reference pix2pix ``latest_net_G.pth`` through ``rendering.foreign``.
Tiles go through the one shared inference path (``models.inference.generator_forward`` in
``DEFAULT_INFERENCE_MODE``); what comes back is CIE Lab chroma (a*, b*) and the model's own lightness L*.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lpd_pipeline.files import read_json_object
from lpd_pipeline.imaging import DEFAULT_MAX_PIXELS, decode_image
from lpd_pipeline.models.colorspace import AB_SCALE, L_SCALE, lab_to_rgb, rgb_to_lab
from lpd_pipeline.models.inference import DEFAULT_INFERENCE_MODE, generator_forward
from lpd_pipeline.models.networks import unet_num_downs
from lpd_pipeline.models.options import AB_SPACES, variant_key
from lpd_pipeline.models.abbins import bins_head
from lpd_pipeline.models.palette import histograms as palette_histograms
from lpd_pipeline.models.recipes import recipe_of
from lpd_pipeline.rendering.foreign import is_reference_state_dict, load_reference_generator
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training.checkpoints import (
    CheckpointError,
    generator_from_payload,
    generator_path,
    is_lpd_payload,
    list_checkpoints,
    load_failure_reason,
)

log = logging.getLogger(__name__)

# A palette painting is read with its long side at most this many pixels (a histogram needs no more).
PALETTE_SIDE = 512
# Channels of a chroma prediction: a*, b*, then the model's own L* (used only without keep_luminance).
CHROMA_CHANNELS = 3


@dataclass
class RenderModel:
    """A generator ready for rendering and what identifies it in an output's metadata."""

    net: torch.nn.Module
    color_space: str
    tile_size: int  # the training tile size: the default rendering tile
    multiple: int  # a rendering tile must be a multiple of this (U-Net depth, ResNet downsampling)
    variant: str
    checkpoint: str
    epoch: int | None
    origin: str  # "lpd" or "pix2pix-reference"
    palette: torch.Tensor | None = None  # one palette for every tile (models/palette.py); None: the model's own

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def check_tile(self, tile: int) -> None:
        if tile < self.multiple or tile % self.multiple:
            raise ValueError(f"tile size {tile} does not fit this {self.variant} generator: it must be a "
                             f"multiple of {self.multiple}")

    def predict(self, gray_tiles: np.ndarray) -> np.ndarray:
        """float32 ``[N, 3, T, T]`` (a*, b*, L*) in CIE Lab units for uint8 gray tiles ``[N, T, T]``.

        lab models: a*b* from the output, L* from the input (the model predicts none); rgb models: the Lab of
        the RGB output.
        """
        inputs, outputs = generator_forward(self.net, self.color_space, torch.from_numpy(gray_tiles),
                                            palette=self.palette)
        with torch.no_grad():
            if self.color_space in AB_SPACES:
                ab = outputs.clamp(-1.0, 1.0) * AB_SCALE
                lab = torch.cat([ab, (inputs + 1.0) * L_SCALE], dim=1)
            else:
                lab = rgb_to_lab((outputs.clamp(-1.0, 1.0) + 1.0) / 2.0)
                lab = torch.cat([lab[:, 1:], lab[:, :1]], dim=1)
        return lab.float().cpu().numpy()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    return resolved


def resolve_palette(model: RenderModel, spec: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """The palette ``spec`` names for ``model``: one of its presets (``blue-green``, ``ochre``...: learned from its
    training set), else a painting file whose global a*b* histogram is the palette (read downscaled)."""
    net = model.net
    if not hasattr(net, "palette_bins"):
        raise ValueError(f"palette {spec!r} asked for, but the {model.variant} generator {model.checkpoint} was "
                         "not trained with palette control (palette: true)")
    if spec in net.preset_names():
        return net.preset(spec)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"palette {spec!r} is neither a preset of this generator ({', '.join(net.preset_names())}) "
                         "nor an image file")
    import cv2

    image = decode_image(path, max_pixels)
    scale = PALETTE_SIDE / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return palette_histograms(image[None], net.palette_centers.cpu())[0]


def palette_swatch(palette: torch.Tensor, centers: torch.Tensor, *, width: int = 240, height: int = 20,
                   lightness: float = 65.0, floor: float = 0.01) -> np.ndarray:
    """A palette as people see it: a uint8 RGB bar ``(height, width, 3)``, one band per a*b* bin holding at least
    ``floor`` of the palette, most common first, as wide as its share, coloured by the bin's centre at L* =
    ``lightness``."""
    weights = palette.detach().float().cpu()
    keep = [int(i) for i in torch.argsort(weights, descending=True) if weights[i] >= floor]
    if not keep:
        return np.full((height, width, 3), 255, dtype=np.uint8)
    share = weights[keep] / weights[keep].sum()
    lab = torch.cat([torch.full((len(keep), 1), lightness), centers.detach().float().cpu()[keep]], dim=1)
    colours = (lab_to_rgb(lab.T[:, :, None]).squeeze(-1).T * 255).round().to(torch.uint8).numpy()
    edges = np.round(np.concatenate([[0.0], np.cumsum(share.numpy())]) * width).astype(int)
    bar = np.empty((height, width, 3), dtype=np.uint8)
    for colour, start, end in zip(colours, edges[:-1], edges[1:]):
        bar[:, start:end] = colour
    bar[:, edges[-1]:] = colours[-1]
    return bar


def load_render_model(path: str | os.PathLike, device: str = "auto", palette: str = "",
                      temperature: float | None = None) -> RenderModel:
    """Load an lpd generator export / training checkpoint, or a reference pix2pix ``latest_net_G.pth``;
    ``palette`` (a preset name or a painting file, see :func:`resolve_palette`) conditions every tile;
    ``temperature`` replaces an a*b*-class generator's decode temperature (ValueError for any other generator)."""
    model = _load_render_model(path, device)
    if palette:
        model.palette = resolve_palette(model, palette)
    if temperature is not None:
        head = bins_head(model.net)
        if head is None:
            raise ValueError(f"decode temperature {temperature} asked for, but the {model.variant} generator "
                             f"{model.checkpoint} regresses colour: only a*b*-class generators (color_space labcls) "
                             "have one")
        head.set_temperature(temperature)
    return model


def _load_render_model(path: str | os.PathLike, device: str) -> RenderModel:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    target = resolve_device(device)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be loaded with weights_only=True: "
                              f"{load_failure_reason(path, exc)}") from exc
    if is_lpd_payload(payload):  # the file is read once: the generator is built from this payload
        loaded = generator_from_payload(payload, target, mode=DEFAULT_INFERENCE_MODE)
        del payload
        config = loaded.config
        multiple = 2 ** unet_num_downs(config.tile_size) if config.backbone == "unet256" else 4
        # The variant is the recipe the checkpoint's config follows (else the plain backbone-space key).
        variant = recipe_of(config.to_dict()) or variant_key(config.backbone, config.color_space)
        return RenderModel(loaded.net, config.color_space, config.tile_size, multiple, variant,
                           str(path.resolve()), loaded.epoch, "lpd")
    if is_reference_state_dict(payload):
        foreign = load_reference_generator(path, payload)
        foreign.net.to(target).train(DEFAULT_INFERENCE_MODE == "pix2pix")
        variant = foreign.backbone if foreign.color_space == "rgb" else f"{foreign.backbone}-{foreign.color_space}"
        return RenderModel(foreign.net, foreign.color_space, foreign.tile_size, foreign.multiple, variant,
                           str(path.resolve()), None, "pix2pix-reference")
    raise CheckpointError(f"{path} is neither an lpd generator/checkpoint nor a pix2pix generator state dict")


# ---- which checkpoint ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointChoice:
    path: Path
    epoch: int | None
    source: str  # "best" (evaluation's choice), "latest" (newest training checkpoint) or "export"

    def describe(self) -> str:
        epoch = f" (epoch {self.epoch})" if self.epoch is not None else ""
        return f"{self.source} checkpoint {self.path}{epoch}"


def best_checkpoint_file(layout: StorageLayout, variant: str) -> Path:
    return layout.path("evaluation", variant, "best_checkpoint.json")


def read_best_checkpoint(layout: StorageLayout, variant: str) -> CheckpointChoice | None:
    """Evaluation's best checkpoint of ``variant``, when recorded, present and inside the storage root."""
    record = read_json_object(best_checkpoint_file(layout, variant))
    if not isinstance(record.get("checkpoint"), str):
        return None
    path = Path(record["checkpoint"])
    if not path.is_absolute():
        path = layout.root / path
    resolved = path.resolve()
    if layout.root not in resolved.parents:
        log.warning("ignoring best checkpoint %s of %s: outside the storage root %s", path, variant, layout.root)
        return None
    if not resolved.is_file():
        log.warning("best checkpoint %s of %s no longer exists", path, variant)
        return None
    epoch = record.get("epoch")
    return CheckpointChoice(resolved, int(epoch) if isinstance(epoch, int) else None, "best")


def latest_checkpoint_choice(layout: StorageLayout, variant: str) -> CheckpointChoice | None:
    run_dir = layout.training_dir(variant)
    found = list_checkpoints(run_dir)
    if found:
        epoch, path = found[-1]
        return CheckpointChoice(path, epoch, "latest")
    export = generator_path(run_dir)
    return CheckpointChoice(export, None, "export") if export.is_file() else None


def resolve_checkpoint(layout: StorageLayout, variant: str) -> CheckpointChoice:
    """The checkpoint a variant renders with (see the module rule); FileNotFoundError when it has none."""
    choice = read_best_checkpoint(layout, variant) or latest_checkpoint_choice(layout, variant)
    if choice is None:
        raise FileNotFoundError(f"no checkpoint for {variant}: neither {best_checkpoint_file(layout, variant)} "
                                f"nor checkpoints under {layout.training_dir(variant)}; train it first "
                                "(job train_models) or pass --checkpoint")
    return choice


def showcase_palettes(presets: dict[str, np.ndarray], wanted: list[str]) -> list[str]:
    """The palettes of the showcase: each wanted name the generator has (``presets``: name -> histogram), or a
    painting file; a wanted preset it lacks is replaced by the preset farthest (L1 between histograms) from those
    already chosen, so as many palettes show as were asked for, as different as the generator's presets allow."""
    chosen = [w for w in wanted if w in presets or Path(w).is_file()]
    for position, name in enumerate(wanted):
        if name in chosen:
            continue
        spare = [p for p in presets if p not in chosen]
        if not spare:
            break
        shown = [presets[c] for c in chosen if c in presets]
        best = max(spare, key=lambda p: min((float(np.abs(presets[p] - h).sum()) for h in shown), default=0.0))
        chosen.insert(min(position, len(chosen)), best)
    return chosen[:len(wanted)]
