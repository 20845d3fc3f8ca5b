"""Enrollment: tokens and one-time secrets, the enrollment profile, over-the-air
enrollment, SCEP issuing policy and identity renewal.

Pure building blocks (onetime, profile, profile_service, instance, links) beside the
services that store (service, ota, scep, renewal).
"""
