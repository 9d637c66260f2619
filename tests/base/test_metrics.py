import math

import numpy as np
import pytest
import torch

from bench_base import metrics


def test_psnr_of_a_known_error():
    target = np.full((8, 8, 3), 0.5)
    pred = target + 0.1  # MSE 0.01 -> 20 dB
    assert metrics.psnr(pred, target) == pytest.approx(20.0, abs=1e-9)


def test_psnr_accepts_torch_tensors_and_clips_to_unit_range():
    target = torch.zeros(4, 4, 3)
    pred = torch.full((4, 4, 3), 1.5)  # clipped to 1 -> MSE 1 -> 0 dB
    assert metrics.psnr(pred, target) == pytest.approx(0.0, abs=1e-9)


def test_ssim_identical_is_one_and_constant_images_follow_the_luminance_term():
    x = np.full((16, 16, 3), 0.5)
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    y = np.full((16, 16, 3), 0.6)
    c1 = (0.01 * 1.0) ** 2  # data_range is fixed at 1
    expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)  # contrast/structure terms are 1
    assert metrics.ssim(y, x) == pytest.approx(expected, rel=1e-6)


def test_ssim_drops_with_noise():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 32, 3))
    noisy = np.clip(x + rng.normal(scale=0.2, size=x.shape), 0, 1)
    assert metrics.ssim(noisy, x) < 0.9


def test_composite_on_white():
    rgba = np.array([[[1.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]]])
    out = metrics.composite_on_white(rgba)
    assert np.allclose(out[0, 0], [1.0, 0.5, 0.5])
    assert np.allclose(out[0, 1], [1.0, 1.0, 1.0])


def test_metrics_reject_wrong_shapes():
    with pytest.raises(ValueError, match="HxWx3"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 4)))
    assert math.isinf(metrics.psnr(np.zeros((2, 2, 3)), np.zeros((2, 2, 3))))
