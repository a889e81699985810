"""Serve a .netpress artifact: micro-batching, metrics, shadow, drift, variant ladder."""
