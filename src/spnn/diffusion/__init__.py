"""Diffusion priors (diffusers UNet2DModel + DDPM schedule) and back-projection-guided samplers."""

from spnn.diffusion.prior import Prior, build_unet

__all__ = ["Prior", "build_unet"]
