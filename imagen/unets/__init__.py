"""U-Nets of the Imagen cascade: the ADM-style base U-Net (F.1) and the Efficient U-Net (F.2, F.3)."""

from imagen.unets.base_unet import UNet
from imagen.unets.efficient_unet import EfficientUNet

__all__ = ["EfficientUNet", "UNet"]
