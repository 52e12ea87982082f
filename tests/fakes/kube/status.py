"""API errors as a real server reports them: a ``Status`` object with code, reason and details.

Messages follow k8s.io/apimachinery ``pkg/api/errors`` (``NewNotFound``, ``NewAlreadyExists``,
``NewConflict``, ``NewInvalid``, ``NewForbidden``, ``NewBadRequest``): clients and kubectl
parse ``reason`` and ``details``, and people read ``message``, so both must be right.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .resources import ResourceType


@dataclasses.dataclass(frozen=True, slots=True)
class Cause:
    """One field error of an Invalid or Conflict status (``details.causes[]``)."""

    type: str  # FieldValueForbidden, FieldValueInvalid, FieldValueRequired, ...
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.message, "field": self.field}


class ApiError(Exception):
    """A failed request; ``status()`` is the body the server sends."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rtype: ResourceType, name: str, kind: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = kind or rtype.plural
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified} "{name}" not found', _details(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists',
                    _details(rtype, name))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(rtype: ResourceType, name: str, why: str = STALE) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.qualified} "{name}": {why}',
                    _details(rtype, name))


def invalid(rtype: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid; the message joins the causes as ``field: Type: detail`` like an ErrorList."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = _details(rtype, name, kind=rtype.kind)
    details["causes"] = [c.as_dict() for c in causes]
    return ApiError(422, "Invalid", f'{rtype.group_kind} "{name}" is invalid: {joined}', details)


def forbidden(rtype: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{rtype.qualified} "{name}" is forbidden: {why}', _details(rtype, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got "{content_type}"')


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def page_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def forbidden_field(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", path, f"Forbidden: {detail}")


def invalid_field(path: str, value: Any, detail: str) -> Cause:
    import json

    shown = json.dumps(value) if not isinstance(value, (dict, list)) else "..."
    return Cause("FieldValueInvalid", path, f"Invalid value: {shown}: {detail}")


def required_field(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))
