"""Operator tools beside the pipeline: verify, webconf, serve, demo."""
