"""Callbacks and loggers that connect ML frameworks to aim runs.

One module per framework (``aim.sdk.adapters.keras``, ``...xgboost``, ...), each also
importable as ``aim.<framework>``. Importing this package imports no framework: each
adapter module imports its own framework when it is imported.
"""
