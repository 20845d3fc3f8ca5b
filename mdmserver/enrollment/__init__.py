"""Enrollment building blocks with no web or storage: secrets, profiles, the instance folder."""
