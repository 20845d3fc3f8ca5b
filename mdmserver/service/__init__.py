"""The device core, as in NanoMDM: one call per endpoint (base), the check-in handlers
and the command loop (core, checkin, connect, next_command), and the middlewares that
wrap them (certauth with reenroll, webhooks, wakes, last_seen).

Features plug in through hooks and next_command steps; nothing here imports a feature.
"""
