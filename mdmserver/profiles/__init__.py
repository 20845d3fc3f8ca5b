"""Configuration profiles: templates, building, validation, signing, encryption and
desired state (pure); reconciliation from hooks (service), what admins do with
profiles (admin) and the device certificates profiles are encrypted to (certs).
"""
