"""One small error hierarchy. Domain code raises these; the CLI, web and scheduler translate them at the edge.

Every error carries a stable `code` (for scripts and the JSON shape), the `rule` that refused, a message in
the user's language (Simplified Chinese) and, where it applies, the `field` at fault.
"""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    code = "workflow_error"
    exit_code = 1

    def __init__(self, message: str, *, rule: str | None = None, field: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.rule = rule or self.code
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "rule": self.rule, "message": self.message}
        if self.field:
            data["field"] = self.field
        if self.details:
            data["details"] = self.details
        return data


class NotFound(WorkflowError):
    code = "not_found"
    exit_code = 4


class UnknownTrigger(WorkflowError):
    code = "unknown_trigger"
    exit_code = 2


class NotAllowedInState(WorkflowError):
    code = "not_allowed_in_state"
    exit_code = 3


class Forbidden(WorkflowError):
    code = "forbidden"
    exit_code = 5


class SeparationOfDuties(Forbidden):
    code = "separation_of_duties"


class Conflict(WorkflowError):
    code = "conflict"
    exit_code = 6


class InvalidPayload(WorkflowError):
    code = "invalid_payload"
    exit_code = 7


class DefinitionError(WorkflowError):
    code = "invalid_definition"
    exit_code = 8
