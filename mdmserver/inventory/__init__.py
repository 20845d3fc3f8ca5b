"""Device inventory: pure parsers that turn real (and often inconsistent) command answers
into normalised facts (parse, values, queries), and the service that asks devices and
stores their answers (service).
"""
