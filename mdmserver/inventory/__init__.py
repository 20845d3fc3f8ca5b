"""Device inventory: pure parsers that turn real (and often inconsistent) command answers into
normalised facts. No Flask, no database: bytes or dictionaries in, plain values out."""
