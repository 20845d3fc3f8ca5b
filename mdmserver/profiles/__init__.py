"""Configuration profiles: templates, building, validation, signing, encryption, desired state."""
