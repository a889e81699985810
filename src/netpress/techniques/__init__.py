"""Compression techniques, one subpackage each."""
