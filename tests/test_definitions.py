"""Process definitions: the canonical names of DOMAIN.md §7 and the definition check."""

from __future__ import annotations

import dataclasses

import pytest

from cases.registry import DEFINITIONS, check_all
from workflow import ProcessDefinition, Step, check_definition

# (source, trigger, dest) of every manual step, as DOMAIN.md §7 names them.
CANONICAL = {
    "supplement": {
        ("draft", "submit", "applied"), ("applied", "approve", "data_entry"), ("applied", "reject", "rejected"),
        ("applied", "withdraw", "draft"), ("draft", "cancel", "cancelled"),
        ("data_entry", "submit_data", "data_review"), ("data_review", "return", "data_entry"),
        ("data_review", "accept", "province_filed"), ("province_filed", "record", "recorded"),
    },
    "amendment": {
        ("draft", "submit", "applied"), ("applied", "approve", "national_review"), ("applied", "approve", "approved"),
        ("applied", "withdraw", "draft"), ("draft", "cancel", "cancelled"),
        ("applied", "reject", "rejected"), ("national_review", "approve", "approved"),
        ("national_review", "reject", "rejected"), ("approved", "record", "recorded"),
    },
    "errata": {
        ("draft", "submit", "self_check"), ("draft", "submit", "province_review"), ("self_check", "confirm", "recorded"),
        ("province_review", "approve", "recorded"), ("province_review", "reject", "rejected"),
        ("province_review", "withdraw", "draft"), ("draft", "cancel", "cancelled"), ("self_check", "cancel", "cancelled"),
    },
    # An internal unit_check state between submit and reported (the second person's check).
    "revocation": {("draft", "submit", "unit_check"), ("unit_check", "verify", "reported"),
                   ("unit_check", "send_back", "draft"),
                   ("reported", "confirm", "confirmed"), ("confirmed", "revoke", "revoked"),
                   ("reported", "withdraw", "draft"), ("reported", "return", "draft"),
                   ("draft", "cancel", "cancelled"), ("unit_check", "cancel", "cancelled")},
    "photo": {("draft", "submit", "filed"), ("filed", "acknowledge", "recorded"),
              ("filed", "withdraw", "draft"), ("draft", "cancel", "cancelled")},
    "authentication": {
        ("received", "check", "comparing"), ("received", "refuse", "refused"),
        ("comparing", "send_to_unit", "verification"), ("verification", "answer", "reviewing"),
        ("reviewing", "issue_report", "reported"), ("reported", "dispute", "verification"),
        # Inside the unit (seed 001 art. 9, 12): steps that keep the state.
        ("verification", "reassign", "verification"), ("verification", "notify_complex", "verification"),
    },
    "spot_check": {("reviewing", "confirm", "upheld"), ("reviewing", "ask_unit", "unit_review"),
                   ("unit_review", "answer", "reviewing"), ("reviewing", "correct", "corrected")},
}  # fmt: skip
TERMINAL = {
    "rejected",
    "recorded",
    "revoked",
    "refused",
    "reported",
    "upheld",
    "corrected",
    "cancelled",  # 已作废: a case cancelled with a reason (tests/test_undo.py)
}  # upheld, corrected: spot checks


def test_all_definitions_pass_the_check():
    assert check_all() == []


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_states_and_triggers(name):
    defn = DEFINITIONS[name]
    manual = {(s.source, s.trigger, s.dest) for s in defn.steps if not s.automatic}
    assert manual == CANONICAL[name]
    assert defn.terminal <= TERMINAL
    # A terminal state accepts no trigger but `dispute`.
    for step in defn.steps:
        if step.source in defn.terminal:
            assert step.trigger == "dispute"


def _toy(**changes) -> ProcessDefinition:
    base = ProcessDefinition(
        name="toy",
        label="玩具",
        states={"a": "A", "b": "B", "done": "完"},
        initial="a",
        terminal=frozenset({"done"}),
        open_actors=("unit",),
        steps=(Step("go", "a", "b", ("unit",)), Step("finish", "b", "done", ("province",))),
    )
    return dataclasses.replace(base, **changes)


def test_check_accepts_a_sound_definition():
    assert check_definition(_toy()) == []


def test_check_finds_unreachable_states():
    problems = check_definition(_toy(states={"a": "A", "b": "B", "done": "完", "island": "孤岛"},
                                     terminal=frozenset({"done", "island"})))  # fmt: skip
    assert any("'island' is unreachable" in p for p in problems)


def test_check_finds_dead_ends():
    problems = check_definition(_toy(steps=(Step("go", "a", "b", ("unit",)),)))
    assert any("'b' is a dead end" in p for p in problems)


def test_check_finds_steps_without_guards():
    problems = check_definition(
        _toy(steps=(Step("go", "a", "b", ()), Step("finish", "b", "done", ("province",))))
    )
    assert any("has no guard" in p for p in problems)
    auto = Step("auto", "a", "b", ("unit",), automatic=True)
    problems = check_definition(_toy(steps=(auto, Step("finish", "b", "done", ("province",)))))
    assert any("automatic step without a condition" in p for p in problems)


def test_check_finds_shadowed_branches_and_unknown_states():
    steps = (
        Step("go", "a", "b", ("unit",)),
        Step("go", "a", "done", ("unit",)),
        Step("finish", "b", "nowhere", ("province",)),
    )
    problems = check_definition(_toy(steps=steps))
    assert any("shadows later alternatives" in p for p in problems)
    assert any("unknown state 'nowhere'" in p for p in problems)


def test_one_machine_per_definition():
    assert DEFINITIONS["photo"].machine is DEFINITIONS["photo"].machine
    assert DEFINITIONS["photo"].machine.models == []
