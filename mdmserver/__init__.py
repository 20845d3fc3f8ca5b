"""mdmserver: an Apple MDM server."""
