"""asrdistill: distilling speech acoustic models (Hinton, Vinyals & Dean, 2015).

Subpackages import only what they need: :mod:`asrdistill.features.context_window`
and (later) the training engine and losses import with torch alone.
"""

__version__ = "0.1.0"
