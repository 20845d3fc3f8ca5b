"""Approved apps: the catalog (App Store apps, in-house iOS apps, macOS packages), their
manifests, and licenses through Apple's Apps and Books service.

Pure domain code: no Flask, no database. Storage is :mod:`mdmserver.storage.sql.app_store`; the
admin service over both is :mod:`mdmserver.apps.service`.
"""
