"""The two metric networks, loaded once: pytorch-fid's InceptionV3 (pool3, 2048-d) and lpips (alex, v0.1).

Rule: inputs are uint8 RGB ``[N, H, W, 3]``; batches of :data:`BATCH` bound the memory whatever N is.
Inception sees what pytorch-fid's own CLI gives it: pixels / 255, resized bilinearly to 299x299 and scaled to
[-1, 1] inside the network (``resize_input``, ``normalize_input``). LPIPS sees pixels / 127.5 - 1 (lpips'
``im2tensor``). Weights come only from :func:`lpd_pipeline.metrics.weights.ensure_weights`; a hub download
attempted while loading raises.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch

from lpd_pipeline.metrics.weights import ensure_weights, no_hub_downloads

BATCH = 32


def check_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    """``images`` as a uint8 ``[N, H, W, 3]`` array, or a ValueError saying what it is instead."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{what}: expected uint8 RGB [N, H, W, 3], got {images.dtype} {images.shape}")
    return images


class MetricModels:
    """Inception (FID/KID features) and LPIPS networks, in eval mode on ``device``; build once, reuse."""

    def __init__(self, device: str = "cpu", *, allow_download: bool = True):
        self.weights_dir = ensure_weights(allow_download=allow_download)
        self.device = torch.device(device)
        from pytorch_fid.inception import InceptionV3
        import lpips as lpips_package

        with no_hub_downloads(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")  # lpips' pretrained=True
            self.inception = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(self.device)
            self.lpips_net = lpips_package.LPIPS(net="alex", version="0.1", verbose=False).eval().to(self.device)

    def _batches(self, images: np.ndarray):
        for start in range(0, len(images), BATCH):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + BATCH]))
            yield chunk.to(self.device).permute(0, 3, 1, 2).float()

    @torch.inference_mode()
    def inception_features(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` RGB -> float64 ``[N, 2048]`` pool3 features (pytorch-fid's)."""
        images = check_images(images)
        out = np.empty((len(images), 2048), dtype=np.float64)
        row = 0
        for batch in self._batches(images):
            feats = self.inception(batch / 255.0)[0].reshape(len(batch), -1)
            out[row:row + len(batch)] = feats.double().cpu().numpy()
            row += len(batch)
        return out

    @torch.inference_mode()
    def lpips(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """LPIPS (alex, v0.1) of each pair ``a[i], b[i]`` (uint8 ``[N, H, W, 3]``) -> float64 ``[N]``."""
        a, b = check_images(a, "lpips a"), check_images(b, "lpips b")
        if a.shape != b.shape:
            raise ValueError(f"lpips: pairs of different shapes {a.shape} vs {b.shape}")
        out = []
        for batch_a, batch_b in zip(self._batches(a), self._batches(b)):
            dist = self.lpips_net(batch_a / 127.5 - 1.0, batch_b / 127.5 - 1.0)
            out.append(dist.reshape(-1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)
