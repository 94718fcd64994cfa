"""r1kit: the DeepSeek-R1 recipe on ordinary hardware."""

from r1kit.errors import R1kitError

__version__ = "0.1.0"
__all__ = ["R1kitError", "__version__"]
