"""The command catalog: what an administrator may send, checked before anything is queued.

Commands with rules of their own (a PIN on macOS, an UnlockToken from the enrollment, lost
mode's supervision) have a module each; every other RequestType Apple documents goes through
the generic path, validated against its schema. See :func:`mdmserver.commands.prepare.prepare`.
"""
