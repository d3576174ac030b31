"""SignAttention: train a pose-to-gloss Transformer and study its attention.

The package root imports nothing, so that the dashboard can import the
torch-free modules (`text`, `holistic`, `metrics`, `artifacts`) without
loading PyTorch.
"""

__version__ = "0.1.0"
