"""storytree-build: a make-style build runner for the generated media of interactive stories."""

__version__ = "0.1.0"
