"""radioactive: a reproducible benchmark for 3D interactive segmentation of radiological images.

Importing this package is cheap: heavy dependencies (torch, model packages) load lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
