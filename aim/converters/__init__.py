"""Converters: runs of other trackers (TensorBoard, MLflow) and exported runs into aim.

Each converter imports the library that reads its source only when it runs.
"""
