"""Push: the APNs client and the push certificate, what an answer from APNs means, and
asking for pushes (scheduling: the durable outbox, then the dispatcher).
"""
