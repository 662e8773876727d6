"""workbench: instance-aware, multi-class segmentation losses for 3D medical images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("workbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
