"""Process definitions as data, and their check.

A definition lists states and steps (transitions). Each step says who may fire it (organisation level and
roles), whether a second person must do it (separation of duties), which payload fields it needs, extra
guards, a branch condition (`when`) where one trigger leads to different states, whether the engine fires it
by itself (`automatic`), and which deadlines it starts, stops, pauses or resumes.

One `transitions.Machine` is built per definition (never per case); the engine binds a case to it when firing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from sqlalchemy.engine import Connection
from transitions import Machine

from workflow.fields import FieldRule

OPEN_TRIGGER = "open"
SUMMARY_LENGTH = 100  # characters of `cases.summary`


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    name: str
    role: str
    active: bool
    org_id: int
    org_code: str
    org_name: str
    org_kind: str
    org_parent_id: int | None
    department_id: int | None = None  # a department inside a unit (level-1 / level-2 accounts)


@dataclass
class CaseView:
    id: int
    type: str
    state: str
    rule_set: str
    org_id: int
    org_code: str
    org_name: str
    org_kind: str
    org_parent_id: int | None
    payload: dict[str, Any]
    version: int
    opened_by: int
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    last_seq: int
    head_hash: str
    notice: str = ""  # a flag shown with the case (e.g. 本地学位信息库无此记录)


@dataclass
class FireContext:
    """What guards, branch conditions and automatic steps see."""

    case: CaseView
    actor: Actor
    trigger: str
    payload: dict[str, Any]  # the case payload with this step's data merged in
    step_payload: dict[str, Any]
    note: str
    now: datetime
    today: date
    conn: Connection
    options: Mapping[str, Any] = field(default_factory=dict)  # the engine's settings (see WorkflowEngine)


Guard = Callable[[FireContext], None]  # raises a WorkflowError subclass to refuse
Condition = Callable[[FireContext], bool]


@dataclass(frozen=True)
class DeadlineEffect:
    """start | stop | pause | resume | cancel a named deadline (cancel: closed as cancelled whatever its state,
    for a case withdrawn or cancelled: nobody is late any more).

    `anchor`: payload field holding the start date (default: the day of the event). `owner`: the level that
    must act before the deadline (its supervisor is told of a breach).
    """

    action: str
    name: str
    days: int = 0
    working: bool = False
    anchor: str | None = None
    rule_sets: tuple[str, ...] = ()
    label: str = ""
    owner: str = ""

    def applies(self, rule_set: str) -> bool:
        return not self.rule_sets or rule_set in self.rule_sets


@dataclass(frozen=True)
class AttachmentNeed:
    """An attachment (named by its purpose) a step needs on the case; `rule_sets`: only under these."""

    purpose: str
    rule_sets: tuple[str, ...] = ()

    def applies(self, rule_set: str) -> bool:
        return not self.rule_sets or rule_set in self.rule_sets


@dataclass(frozen=True)
class Step:
    trigger: str
    source: str
    dest: str
    actors: tuple[str, ...]
    label: str = ""
    roles: tuple[str, ...] = ()
    second_person: bool = False
    requires: tuple[FieldRule, ...] = ()
    guards: tuple[Guard, ...] = ()
    when: Condition | None = None
    automatic: bool = False
    deadlines: tuple[DeadlineEffect, ...] = ()
    # Rule sets under which the step takes effect only with the supervising leader's one-time code.
    authorization: tuple[str, ...] = ()
    # Separation of duties: a collecting step (`collects`) bars its person from this round's second-person
    # step; a step that sends the case back (`sends_back`) starts a new round.
    collects: bool = False
    sends_back: bool = False
    # The documents issued since the round began become void (作废) with this step (a withdrawn application, a
    # report sent back, a cancelled case); they stay stored with their numbers (see cases.voids).
    voids_letters: bool = False
    # Attachments (by purpose: a name, or an AttachmentNeed limited to rule sets) that must be on the case
    # before the step; the domain's guard checks them in the step's transaction, the pages show them.
    attachments: tuple[str | AttachmentNeed, ...] = ()

    def needs_authorization(self, rule_set: str) -> bool:
        return rule_set in self.authorization

    def attachments_needed(self, rule_set: str) -> tuple[str, ...]:
        """The purposes this step needs under `rule_set`, in declared order."""
        needs = (AttachmentNeed(a) if isinstance(a, str) else a for a in self.attachments)
        return tuple(need.purpose for need in needs if need.applies(rule_set))

    @property
    def has_guard(self) -> bool:
        if self.automatic:
            return self.when is not None
        return bool(self.actors)


@dataclass
class ProcessDefinition:
    name: str
    label: str
    states: Mapping[str, str]  # name -> Chinese label
    initial: str
    terminal: frozenset[str]
    steps: tuple[Step, ...]
    open_actors: tuple[str, ...]
    open_roles: tuple[str, ...] = ()
    open_requires: tuple[FieldRule, ...] = ()
    open_guards: tuple[Guard, ...] = ()
    open_deadlines: tuple[DeadlineEffect, ...] = ()
    choose_rule_set: Callable[[Mapping[str, Any]], str] = field(default=lambda payload: "default")
    rule_sets: tuple[str, ...] = ("default",)
    # Rewrites shapes users may type (e.g. one change written flat) before validation, in place.
    prepare_payload: Callable[[dict[str, Any]], None] | None = None
    # A flag the case carries on its page and in lists (`cases.notice`), recomputed on every step.
    notice_of: Callable[[Mapping[str, Any]], str] = field(default=lambda payload: "")
    # Payload field copied to `cases.reference` on every step (indexed: finding a case by it stays fast).
    reference_field: str | None = None

    def reference_of(self, payload: Mapping[str, Any]) -> str | None:
        value = payload.get(self.reference_field) if self.reference_field else None
        return str(value).strip()[:64] or None if value not in (None, "") else None

    # What lists show as the case's subject, copied to `cases.summary` on every step (so a list never reads
    # the payload, which for a batch holds thousands of records): the first non-empty of `summary_fields`,
    # else how many items the first non-empty list of `summary_lists` holds.
    summary_fields: tuple[str, ...] = ("name", "applicant_name")
    summary_lists: tuple[str, ...] = ("records", "people", "changes")

    def summary_of(self, payload: Mapping[str, Any]) -> str:
        for key in self.summary_fields:
            if payload.get(key):
                return str(payload[key])[:SUMMARY_LENGTH]
        for key in self.summary_lists:
            items = payload.get(key)
            if isinstance(items, list) and items:
                return f"{len(items)} 条"
        return ""

    # -- look-ups -------------------------------------------------------------------------------------
    @cached_property
    def triggers(self) -> frozenset[str]:
        return frozenset(step.trigger for step in self.steps if not step.automatic)

    @cached_property
    def has_deadlines(self) -> bool:
        return bool(self.open_deadlines) or any(step.deadlines for step in self.steps)

    @cached_property
    def _by_source_trigger(self) -> dict[tuple[str, str], list[Step]]:
        index: dict[tuple[str, str], list[Step]] = {}
        for step in self.steps:
            index.setdefault((step.source, step.trigger), []).append(step)
        return index

    def candidates(self, state: str, trigger: str) -> list[Step]:
        return [s for s in self._by_source_trigger.get((state, trigger), []) if not s.automatic]

    @cached_property
    def open_accepts(self) -> frozenset[str]:
        """The payload keys opening a case takes (its field rules)."""
        return frozenset(rule.name for rule in self.open_requires)

    def find_step(self, source: str, trigger: str, dest: str) -> Step | None:
        for step in self._by_source_trigger.get((source, trigger), ()):
            if step.dest == dest:
                return step
        return None

    def step_for(self, source: str, trigger: str, dest: str) -> Step:
        for step in self._by_source_trigger[(source, trigger)]:
            if step.dest == dest:
                return step
        raise KeyError((source, trigger, dest))

    def manual_steps_from(self, state: str) -> list[Step]:
        return [s for s in self.steps if s.source == state and not s.automatic]

    def automatic_from(self, state: str) -> list[Step]:
        return [s for s in self.steps if s.source == state and s.automatic]

    def state_label(self, state: str) -> str:
        return self.states.get(state, state)

    # -- the one machine ------------------------------------------------------------------------------
    @cached_property
    def machine(self) -> Machine:
        transitions = []
        for step in self.steps:
            spec: dict[str, Any] = {"trigger": step.trigger, "source": step.source, "dest": step.dest}
            if step.when is not None:
                spec["conditions"] = [_condition(step.when)]
            transitions.append(spec)
        return Machine(
            model=None,
            states=list(self.states),
            transitions=transitions,
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )


def _condition(when: Condition) -> Callable[[Any], bool]:
    def check(event_data: Any) -> bool:
        return bool(when(event_data.kwargs["ctx"]))

    return check


class BoundCase:
    """The object a definition's machine moves: only a `state` attribute."""

    __slots__ = ("state",)

    def __init__(self, state: str):
        self.state = state


def check_definition(defn: ProcessDefinition) -> list[str]:
    """Problems in a definition: unknown or unreachable states, dead ends, steps without a guard, bad branches."""
    problems: list[str] = []
    states = set(defn.states)
    if defn.initial not in states:
        problems.append(f"{defn.name}: initial state {defn.initial!r} is not a state")
    for state in defn.terminal - states:
        problems.append(f"{defn.name}: terminal state {state!r} is not a state")
    if not defn.open_actors:
        problems.append(f"{defn.name}: nobody may open a case (open_actors is empty)")
    for step in defn.steps:
        for end in (step.source, step.dest):
            if end not in states:
                problems.append(f"{defn.name}: step {step.trigger} uses unknown state {end!r}")
        if not step.has_guard:
            what = "an automatic step without a condition" if step.automatic else "no actor may fire it"
            problems.append(
                f"{defn.name}: step {step.source} -{step.trigger}-> {step.dest} has no guard ({what})"
            )
        for effect in step.deadlines + defn.open_deadlines:
            if effect.action not in ("start", "stop", "pause", "resume", "cancel"):
                problems.append(f"{defn.name}: unknown deadline action {effect.action!r}")
            if effect.action == "start" and (not effect.owner or effect.days <= 0):
                problems.append(f"{defn.name}: deadline {effect.name} starts without an owner or a length")
            for rule_set in effect.rule_sets:
                if rule_set not in defn.rule_sets:
                    problems.append(
                        f"{defn.name}: deadline {effect.name} names unknown rule set {rule_set!r}"
                    )
    # Reachability from the initial state.
    seen = {defn.initial}
    queue = deque([defn.initial])
    while queue:
        state = queue.popleft()
        for step in defn.steps:
            if step.source == state and step.dest not in seen:
                seen.add(step.dest)
                queue.append(step.dest)
    for state in sorted(states - seen):
        problems.append(f"{defn.name}: state {state!r} is unreachable from {defn.initial!r}")
    # Dead ends: a state that is not terminal must lead somewhere.
    for state in sorted(states - defn.terminal):
        if not any(step.source == state for step in defn.steps):
            problems.append(f"{defn.name}: state {state!r} is a dead end (not terminal, no step leaves it)")
    # Terminal states must still be able to reach... nothing required; but a non-terminal cycle must exit.
    # Branches: all but the last alternative need a condition, and they share who may fire them.
    for (source, trigger), steps in defn._by_source_trigger.items():
        manual = [s for s in steps if not s.automatic]
        for step in manual[:-1]:
            if step.when is None:
                problems.append(
                    f"{defn.name}: {source} -{trigger}-> {step.dest} shadows later alternatives (no condition)"
                )
        for step in manual[1:]:
            first = manual[0]
            if (step.actors, step.roles, step.second_person, step.requires, step.attachments) != (
                first.actors,
                first.roles,
                first.second_person,
                first.requires,
                first.attachments,
            ):
                problems.append(
                    f"{defn.name}: alternatives of {source} -{trigger}-> differ in who may fire them"
                )
    try:
        defn.machine  # noqa: B018 - building the machine validates it
    except Exception as exc:  # pragma: no cover - transitions' own validation
        problems.append(f"{defn.name}: transitions rejected the definition: {exc}")
    return problems
