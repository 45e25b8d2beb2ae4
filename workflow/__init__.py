"""The generic case engine. It knows nothing about degrees: process definitions are data given to it."""

from workflow.definition import (
    Actor,
    AttachmentNeed,
    CaseView,
    DeadlineEffect,
    FireContext,
    ProcessDefinition,
    Step,
    check_definition,
)
from workflow.engine import FireResult, Vocabulary, WorkflowEngine, load_actor, load_case
from workflow.errors import (
    Conflict,
    DefinitionError,
    Forbidden,
    InvalidPayload,
    NotAllowedInState,
    NotFound,
    SeparationOfDuties,
    UnknownTrigger,
    WorkflowError,
)
from workflow.fields import FieldRule, FieldSet, parse_date

__all__ = [
    "Actor",
    "AttachmentNeed",
    "CaseView",
    "Conflict",
    "DeadlineEffect",
    "DefinitionError",
    "FieldRule",
    "FieldSet",
    "FireContext",
    "FireResult",
    "Forbidden",
    "InvalidPayload",
    "NotAllowedInState",
    "NotFound",
    "ProcessDefinition",
    "SeparationOfDuties",
    "Step",
    "UnknownTrigger",
    "Vocabulary",
    "WorkflowEngine",
    "WorkflowError",
    "check_definition",
    "load_actor",
    "load_case",
    "parse_date",
]
