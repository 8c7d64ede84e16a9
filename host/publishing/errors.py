"""Why a publishing request was refused: each error carries the HTTP status the API answers with
and a message the publisher or reviewer can act on."""

from __future__ import annotations


class PublishingRefused(Exception):
    """A publishing request that changed nothing; ``reason`` says why (safe to show the caller)."""

    status = 400
    title = "Refused"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class NotAllowed(PublishingRefused):
    """The caller may not do this to this plugin or version (their role, or their own work)."""

    status = 403
    title = "Not allowed"


class UnknownVersion(PublishingRefused):
    """No such plugin id or version was uploaded."""

    status = 404
    title = "No such version"


class WrongState(PublishingRefused):
    """The version is not in a state the action starts from (or it changed meanwhile)."""

    status = 409
    title = "Not possible now"


class VersionExists(PublishingRefused):
    """That version number is taken by other files: a version never changes."""

    status = 409
    title = "Version exists"


class InvalidInput(PublishingRefused):
    """A field of the request is wrong; ``errors`` maps each field to its messages."""

    status = 422
    title = "Invalid request"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))


class PackageInvalid(PublishingRefused):
    """The uploaded archive is not an acceptable package (:class:`~.packages.PackageRefused`)."""

    status = 422
    title = "Package refused"
