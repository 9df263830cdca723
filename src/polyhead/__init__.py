"""polyhead: one shared transformer encoder, many task heads, one forward pass."""
__version__ = "0.1.0"
