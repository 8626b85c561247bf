"""LossLens core: data, training, the run store, analysis and export, with no UI.

The app (``app.py``, ``pages/``) and the CLI (``python -m lab``) are thin layers over this package.
"""
