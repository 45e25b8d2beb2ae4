"""All case types, by their canonical `--type` name."""

from __future__ import annotations

from cases import (
    amendment,
    attachments,
    authentication,
    errata,
    filing,
    photo,
    revocation,
    spot_check,
    supplement,
)
from workflow import DefinitionError, ProcessDefinition, check_definition

DEFINITIONS: dict[str, ProcessDefinition] = {
    d.name: d
    for d in (
        supplement.DEFINITION,
        amendment.DEFINITION,
        errata.DEFINITION,
        revocation.DEFINITION,
        photo.DEFINITION,
        authentication.DEFINITION,
        spot_check.DEFINITION,
        filing.DEFINITION,
    )
}


def check_all() -> list[str]:
    problems = [problem for defn in DEFINITIONS.values() for problem in check_definition(defn)]
    return problems + attachments.definition_problems(DEFINITIONS)


def assert_valid() -> None:
    problems = check_all()
    if problems:
        raise DefinitionError("流程定义有误：" + "；".join(problems), rule="definition_check")
