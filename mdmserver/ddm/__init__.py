"""Declarative Device Management served natively (issue #15).

protocol.py parses the DDM check-in endpoints and builds their JSON; schema.py is the typed
view of Apple's declaration schema (the committed schema_index.json, built by
scripts/gen_ddm_index.py); validate.py checks declarations against it; status.py reads status
reports; service.py is what the server does with all of them.
"""
