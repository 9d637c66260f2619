"""Image metrics, computed the same way for every method: scikit-image on float images in [0, 1].

nerfstudio's own SSIM infers its data range from the images, which moves with their content; here
both metrics use a fixed ``data_range=1`` and SSIM uses the Gaussian 11x11, sigma 1.5 window of
Wang et al. (2004), as the NeRF papers report it. Ground truth is RGBA composited on white.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def _as_float_image(image) -> np.ndarray:
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    array = array.astype(np.float64)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {array.shape}")
    return np.clip(array, 0.0, 1.0)


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """HxWx4 float RGBA in [0, 1] -> HxWx3 RGB over a white background."""
    rgba = np.asarray(rgba, dtype=np.float64)
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def psnr(pred, target) -> float:
    return float(peak_signal_noise_ratio(_as_float_image(target), _as_float_image(pred), data_range=1.0))


def ssim(pred, target) -> float:
    return float(
        structural_similarity(
            _as_float_image(target),
            _as_float_image(pred),
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )
