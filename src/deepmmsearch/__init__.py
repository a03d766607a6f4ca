"""DeepMMSearch-R1."""
