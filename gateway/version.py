"""The package's version, in one place: the package face, ``--version`` and the build-info
metric read it from here (no module imports the package face)."""

__version__ = "0.1.0"
