"""Compliance and device trust: declarative policies and their pure evaluation (policy,
rules, evaluate, jailbreak), the service that stores each device's state (service),
what is done about a non-compliant device (remediation), and the answers given to
relying services (trust, trust_jwt).
"""
