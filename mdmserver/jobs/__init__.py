"""Background work: APNs pushes and webhooks, on RQ (Redis) or on in-process threads."""
