"""Compliance: declarative policies and their evaluation against a device's facts. Pure: the
service layer loads facts and stores outcomes; nothing here touches Flask or a database."""
