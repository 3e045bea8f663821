"""kconsole: a terminal console for Jupyter kernels."""

__version__ = "0.1.0"
