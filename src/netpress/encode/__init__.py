"""Storage of compressed weights: sparse positions, entropy coders and the .netpress file."""
