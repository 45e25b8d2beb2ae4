"""The engine: open a case and fire a trigger, atomically.

`fire` loads the case and the person in one write transaction, explains any refusal through the error
hierarchy, lets the definition's `transitions` machine choose the next state, runs automatic follow-up steps,
and writes the new state (guarded by `version`), the audit events and the deadline changes together.
A refused or failed step leaves the case, its history and its deadlines exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from db.clock import Clock, SystemClock
from db.engine import transaction
from db.models import Case, CaseEvent, Organisation, User
from db.precompiled import Precompiled
from workflow import timers
from workflow.audit import GENESIS, event_hash
from workflow.definition import OPEN_TRIGGER, Actor, BoundCase, CaseView, FireContext, ProcessDefinition, Step
from workflow.errors import (
    Conflict,
    Forbidden,
    InvalidPayload,
    NotAllowedInState,
    NotFound,
    SeparationOfDuties,
    UnknownTrigger,
)
from workflow.fields import FieldRule, FieldSet

# Payload key of the supervising leader's one-time code on steps that need it.
AUTHORIZATION_FIELD = "authorization_code"
# (conn, actor, case, step, code, now): consume a valid code in the step's transaction or raise.
AuthorizeHook = Callable[[Connection, Actor, CaseView, Step, "str | None", datetime], None]

CASES = Case.__table__
EVENTS = CaseEvent.__table__
USERS = User.__table__
ORGS = Organisation.__table__

ScopePolicy = Callable[[Actor, CaseView], str | None]  # a refusal message, or None when in scope
# Runs inside the step's transaction after its event is written (e.g. to issue the step's letters).
StepHook = Callable[[Connection, FireContext, Step, int], None]


@dataclass
class Vocabulary:
    """Labels for messages in the user's language."""

    levels: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)

    def level(self, name: str) -> str:
        return self.levels.get(name, name)

    def role(self, name: str) -> str:
        return self.roles.get(name, name)


@dataclass
class FireResult:
    case_id: int
    from_state: str
    to_state: str
    version: int
    events: list[dict[str, Any]]
    notice: str = ""  # the case's flag after the step (e.g. 本地学位信息库无此记录，未更新任何记录)


_CASE_COLUMNS = [
    CASES.c.id,
    CASES.c.type,
    CASES.c.state,
    CASES.c.rule_set,
    CASES.c.org_id,
    ORGS.c.code.label("org_code"),
    ORGS.c.name.label("org_name"),
    ORGS.c.kind.label("org_kind"),
    ORGS.c.parent_id.label("org_parent_id"),
    CASES.c.payload,
    CASES.c.version,
    CASES.c.opened_by,
    CASES.c.opened_at,
    CASES.c.updated_at,
    CASES.c.closed_at,
    CASES.c.last_seq,
    CASES.c.head_hash,
    CASES.c.notice,
]
_CASE_QUERY = select(*_CASE_COLUMNS).join_from(CASES, ORGS, CASES.c.org_id == ORGS.c.id)
_ACTOR_QUERY = select(
    USERS.c.id,
    USERS.c.username,
    USERS.c.name,
    USERS.c.role,
    USERS.c.active,
    USERS.c.org_id,
    ORGS.c.code.label("org_code"),
    ORGS.c.name.label("org_name"),
    ORGS.c.kind.label("org_kind"),
    ORGS.c.parent_id.label("org_parent_id"),
    USERS.c.department_id,
).join_from(USERS, ORGS, USERS.c.org_id == ORGS.c.id)


# The hot statements are built once: building them per call costs more than SQLite's own work.
_CASE_BY_ID = _CASE_QUERY.where(CASES.c.id == bindparam("case_id"))
_ACTOR_BY_ID = _ACTOR_QUERY.where(USERS.c.id == bindparam("who"))
_ACTOR_BY_USERNAME = _ACTOR_QUERY.where(USERS.c.username == bindparam("who"))
_CASE_SET = (
    "state",
    "payload",
    "version",
    "updated_at",
    "closed_at",
    "last_seq",
    "head_hash",
    "reference",
    "summary",
    "notice",
)
_EVENT_COLUMNS = ("case_id", "seq", "at", "actor_id", "actor_name", "trigger", "from_state", "to_state", "note",
                  "payload", "prev_hash", "hash")  # fmt: skip
# The version guard makes this the optimistic lock: a stale writer matches no row.
_UPDATE_CASE = Precompiled(
    update(CASES)
    .where(CASES.c.id == bindparam("where_id"), CASES.c.version == bindparam("where_version"))
    .values({name: bindparam(f"v_{name}", type_=CASES.c[name].type) for name in _CASE_SET})
)
_INSERT_EVENT = Precompiled(
    insert(EVENTS)
    .values({name: bindparam(f"v_{name}", type_=EVENTS.c[name].type) for name in _EVENT_COLUMNS})
    .returning(EVENTS.c.id),
    returning=(EVENTS.c.id,),
)
_INSERT_CASE = insert(CASES)
_ROUND_EVENTS = (
    select(EVENTS.c.trigger, EVENTS.c.from_state, EVENTS.c.to_state, EVENTS.c.actor_id)
    .where(EVENTS.c.case_id == bindparam("case_id"))
    .order_by(EVENTS.c.seq)
)
# The case and the person in one round trip (the hot path of `fire`).
_ACTOR_ORGS = ORGS.alias("actor_org")
_ACTOR_COLUMNS = [
    USERS.c.id.label("a_id"),
    USERS.c.username.label("a_username"),
    USERS.c.name.label("a_name"),
    USERS.c.role.label("a_role"),
    USERS.c.active.label("a_active"),
    USERS.c.org_id.label("a_org_id"),
    _ACTOR_ORGS.c.code.label("a_org_code"),
    _ACTOR_ORGS.c.name.label("a_org_name"),
    _ACTOR_ORGS.c.kind.label("a_org_kind"),
    _ACTOR_ORGS.c.parent_id.label("a_org_parent_id"),
    USERS.c.department_id.label("a_department_id"),
]
_CASE_AND_ACTOR = Precompiled(
    select(*_CASE_COLUMNS, *_ACTOR_COLUMNS)
    .join_from(CASES, ORGS, CASES.c.org_id == ORGS.c.id)
    .join(USERS, USERS.c.username == bindparam("who"))
    .join(_ACTOR_ORGS, USERS.c.org_id == _ACTOR_ORGS.c.id)
    .where(CASES.c.id == bindparam("case_id"))
)
_CASE_FIELDS = len(_CASE_COLUMNS)


def refuse_undeclared(payload: Mapping[str, Any], rules: tuple[FieldRule, ...], label: str) -> None:
    """Refuse keys a step did not declare, by name: a step's field rules are its whole contract."""
    accepts = {rule.name for rule in rules}
    unknown = sorted(key for key in payload if key not in accepts)
    if unknown:
        allowed = "、".join(rule.label for rule in rules) or "无（本步骤不需填写数据）"
        raise InvalidPayload(
            f"字段 {'、'.join(unknown)}：“{label}”不接受这些字段，未作任何修改（本步骤可填写：{allowed}）",
            field=unknown[0],
            rule="unknown_field",
            fields=unknown,
        )


def load_case_and_actor(conn: Connection, case_id: int, who: str | int | Actor) -> tuple[CaseView, Actor]:
    if isinstance(who, str):
        values = _CASE_AND_ACTOR.first(conn, {"case_id": case_id, "who": who})
        if values is not None:
            case = CaseView(*values[:_CASE_FIELDS])
            case.payload = dict(case.payload or {})
            return case, Actor(*values[_CASE_FIELDS:])
    # Cold path (or a missing case or user): separate queries say which one is missing.
    return load_case(conn, case_id), load_actor(conn, who)


def _insert_event(conn: Connection, event: Mapping[str, Any]) -> int:
    row = _INSERT_EVENT.first(conn, {f"v_{name}": value for name, value in event.items()})
    assert row is not None
    return int(row[0])


def load_case(conn: Connection, case_id: int) -> CaseView:
    row = conn.execute(_CASE_BY_ID, {"case_id": case_id}).first()
    if row is None:
        raise NotFound(f"案件 #{case_id} 不存在", rule="case_exists", field="case_id")
    data = row._asdict()
    data["payload"] = dict(data["payload"] or {})
    return CaseView(**data)


def load_actor(conn: Connection, who: str | int | Actor) -> Actor:
    if isinstance(who, Actor):
        return who
    query = _ACTOR_BY_ID if isinstance(who, int) else _ACTOR_BY_USERNAME
    row = conn.execute(query, {"who": who}).first()
    if row is None:
        raise NotFound(f"用户 {who} 不存在", rule="user_exists", field="as")
    return Actor(**row._asdict())


class WorkflowEngine:
    def __init__(
        self,
        db: Engine,
        definitions: Mapping[str, ProcessDefinition],
        *,
        scope: ScopePolicy,
        calculator: timers.DueCalculator,
        clock: Clock | None = None,
        vocabulary: Vocabulary | None = None,
        after_step: tuple[StepHook, ...] = (),
        authorize: AuthorizeHook | None = None,
        options: Mapping[str, Any] | None = None,
    ):
        self.db = db
        self.definitions = dict(definitions)
        self.scope = scope
        self.calculator = calculator
        self.clock = clock or SystemClock()
        self.vocabulary = vocabulary or Vocabulary()
        self.after_step = after_step
        self.authorize = authorize
        self.options = dict(options or {})  # settings guards read (e.g. require_registry_record)

    # -- queries ----------------------------------------------------------------------------------------
    def definition(self, case_type: str) -> ProcessDefinition:
        try:
            return self.definitions[case_type]
        except KeyError:
            known = "、".join(sorted(self.definitions))
            raise NotFound(
                f"案件类型 {case_type} 不存在（可用：{known}）", rule="case_type_exists", field="type"
            ) from None

    def permission_problem(
        self, step: Step, case: CaseView, actor: Actor, conn: Connection | None = None
    ) -> Forbidden | None:
        """Why `actor` may not fire `step` on `case`, or None. Permissions deny by default.

        `conn`: the caller's connection (the step's transaction), used to read the round's collecting steps."""
        vocab = self.vocabulary
        who = f"{actor.name}（{actor.org_name}，{vocab.role(actor.role)}）"
        if not actor.active:
            return Forbidden(f"用户 {actor.username} 已停用", rule="active_user")
        if actor.org_kind not in step.actors:
            levels = "或".join(vocab.level(level) for level in step.actors)
            return Forbidden(
                f"“{step.label or step.trigger}”须由{levels}办理，{who}无权执行", rule="actor_level"
            )
        refusal = self.scope(actor, case)
        if refusal:
            return Forbidden(refusal, rule="organisation_scope")
        if step.roles and actor.role not in step.roles:
            roles = "、".join(vocab.role(role) for role in step.roles)
            return Forbidden(
                f"“{step.label or step.trigger}”须由以下角色办理：{roles}；{who}无权执行", rule="actor_role"
            )
        if step.second_person:
            collected = self._collected_by(conn, case, actor)
            if collected is not None:
                return SeparationOfDuties(
                    f"采集与校核须由不同工作人员负责：{actor.name} 本轮已办理“{collected}”，"
                    f"不能再执行“{step.label or step.trigger}”，请由另一名工作人员校核",
                    rule="collector_may_not_verify",
                    person=actor.username,
                    step=collected,
                )
        return None

    def _collected_by(self, conn: Connection | None, case: CaseView, actor: Actor) -> str | None:
        """The collecting step `actor` did in the case's current round (since it last went back), or None.

        Opening the case counts as collecting: the opener never verifies their own case."""
        if actor.id == case.opened_by:
            return f"新建{self.definition(case.type).label}案件"
        if not case.id:
            return None
        if conn is None:
            with self.db.connect() as own:
                return self._collected_by(own, case, actor)
        defn = self.definition(case.type)
        rows = conn.execute(_ROUND_EVENTS, {"case_id": case.id}).all()
        for trigger, from_state, to_state, actor_id in reversed(rows):
            step = defn.find_step(from_state, trigger, to_state)
            if step is None:
                continue
            if step.sends_back:
                return None
            if step.collects and actor_id == actor.id:
                return step.label or step.trigger
        return None

    def allowed_steps(self, case: CaseView, actor: Actor, conn: Connection | None = None) -> list[Step]:
        """The manual steps this person may fire now (branches of one trigger listed once)."""
        return [step for step, problem in self.step_permissions(case, actor, conn) if problem is None]

    def step_permissions(
        self, case: CaseView, actor: Actor, conn: Connection | None = None
    ) -> list[tuple[Step, Forbidden | None]]:
        """Each manual step from the case's state (branches of one trigger once) with why this person may not
        fire it, or None."""
        defn = self.definition(case.type)
        seen: set[str] = set()
        out = []
        for step in defn.manual_steps_from(case.state):
            if step.trigger in seen:
                continue
            seen.add(step.trigger)
            out.append((step, self.permission_problem(step, case, actor, conn)))
        return out

    # -- commands ---------------------------------------------------------------------------------------
    def open(
        self,
        case_type: str,
        org_code: str,
        actor: str | int | Actor,
        payload: Mapping[str, Any] | None = None,
        note: str = "",
        *,
        internal: Mapping[str, Any] | None = None,
    ) -> FireResult:
        defn = self.definition(case_type)
        now = self.clock.now()
        with transaction(self.db) as conn:
            who = load_actor(conn, actor)
            org = conn.execute(select(ORGS).where(ORGS.c.code == org_code)).first()
            if org is None:
                raise NotFound(f"组织 {org_code} 不存在", rule="organisation_exists", field="org")
            data = dict(payload or {})
            if defn.prepare_payload:
                defn.prepare_payload(data)
            draft = CaseView(
                id=0,
                type=case_type,
                state=defn.initial,
                rule_set="",
                org_id=org.id,
                org_code=org.code,
                org_name=org.name,
                org_kind=org.kind,
                org_parent_id=org.parent_id,
                payload=data,
                version=0,
                opened_by=who.id,
                opened_at=now,
                updated_at=now,
                closed_at=None,
                last_seq=0,
                head_hash=GENESIS,
            )
            opening = Step(
                trigger=OPEN_TRIGGER,
                source="",
                dest=defn.initial,
                actors=defn.open_actors,
                roles=defn.open_roles,
                label=f"新建{defn.label}案件",
            )
            problem = self.permission_problem(opening, draft, who)
            if problem:
                raise problem
            refuse_undeclared(data, defn.open_requires, opening.label)
            FieldSet(defn.open_requires).validate(data, note, today=self.clock.today())
            # What the software itself adds (e.g. the filing a supplement comes from), never a user's input.
            data.update(internal or {})
            ctx = FireContext(
                draft, who, OPEN_TRIGGER, data, dict(data), note, now, self.clock.today(), conn, self.options
            )
            for guard in defn.open_guards:
                guard(ctx)
            rule_set = defn.choose_rule_set(data)
            case_id = conn.execute(
                _INSERT_CASE,
                dict(
                    type=case_type,
                    state=defn.initial,
                    rule_set=rule_set,
                    org_id=org.id,
                    payload=data,
                    version=1,
                    opened_by=who.id,
                    opened_at=now,
                    updated_at=now,
                    closed_at=None,
                    last_seq=1,
                    head_hash="",
                    reference=defn.reference_of(data),
                    summary=defn.summary_of(data),
                    notice=defn.notice_of(data),
                ),
            ).inserted_primary_key[0]
            event = self._event(case_id, 1, now, who, OPEN_TRIGGER, "", defn.initial, note, data, GENESIS)
            event_id = _insert_event(conn, event)
            conn.execute(update(CASES).where(CASES.c.id == case_id).values(head_hash=event["hash"]))
            timers.apply_effects(
                conn,
                self.calculator,
                case_id=case_id,
                rule_set=rule_set,
                effects=defn.open_deadlines,
                payload=data,
                event_id=event_id,
                now=now,
                today=ctx.today,
            )
        return FireResult(case_id, "", defn.initial, 1, [event], defn.notice_of(data))

    def fire(
        self,
        case_id: int,
        trigger: str,
        actor: str | int | Actor,
        note: str = "",
        payload: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
    ) -> FireResult:
        now = self.clock.now()
        today = self.clock.today()
        with transaction(self.db) as conn:
            case, who = load_case_and_actor(conn, case_id, actor)
            if expected_version is not None and case.version != expected_version:
                raise Conflict(
                    f"案件 #{case_id} 已被他人修改（版本 {expected_version} → {case.version}），请刷新后重试",
                    rule="stale_version",
                )
            defn = self.definition(case.type)
            if trigger not in defn.triggers:
                known = "、".join(sorted(defn.triggers))
                raise UnknownTrigger(
                    f"{defn.label}案件没有操作 {trigger}（可用操作：{known}）",
                    rule="known_trigger",
                    field="trigger",
                )
            candidates = defn.candidates(case.state, trigger)
            if not candidates:
                here = [s.trigger for s in defn.manual_steps_from(case.state)]
                options = "、".join(dict.fromkeys(here)) or "无（已办结）"
                raise NotAllowedInState(
                    f"案件 #{case_id} 当前状态为“{defn.state_label(case.state)}”（{case.state}），"
                    f"不能执行 {trigger}；此状态可执行：{options}",
                    rule="allowed_in_state",
                    state=case.state,
                )
            first = candidates[0]
            problem = self.permission_problem(first, case, who, conn)
            if problem:
                raise problem
            step_payload = dict(payload or {})
            # A one-time code is checked and consumed here, never stored with the case or its events.
            code = step_payload.pop(AUTHORIZATION_FIELD, None)
            if defn.prepare_payload:
                defn.prepare_payload(step_payload)
            refuse_undeclared(step_payload, first.requires, first.label or trigger)
            if first.needs_authorization(case.rule_set):
                if self.authorize is None:
                    raise Forbidden(
                        "此操作须主管领导授权，但未配置授权码服务", rule="authorization_unavailable"
                    )
                self.authorize(conn, who, case, first, code, now)
            merged = {**case.payload, **step_payload}
            checked = FieldSet(first.requires).validate(merged, note, step_payload, today=today)
            step_payload.update(
                {k: v for k, v in checked.items() if k in step_payload or k not in case.payload}
            )
            ctx = FireContext(case, who, trigger, merged, step_payload, note, now, today, conn, self.options)
            # A step that changes what identifies the case (its certificate, its person) passes the checks of
            # opening again: ownership of the certificate, the unit's scope, the rules chosen by dates.
            if defn.open_guards and step_payload.keys() & defn.open_accepts:
                for guard in defn.open_guards:
                    if guard not in first.guards:  # the step runs it below
                        guard(ctx)
            for guard in first.guards:
                guard(ctx)

            bound = BoundCase(case.state)
            if not defn.machine.events[trigger].trigger(bound, ctx=ctx):
                raise NotAllowedInState(
                    f"案件 #{case_id} 不满足“{first.label or trigger}”的条件", rule="branch_condition"
                )
            steps = [(defn.step_for(case.state, trigger, bound.state), case.state, note, step_payload)]
            # Automatic follow-up steps (e.g. a matching authentication is reported at once).
            state = bound.state
            for _ in range(len(defn.steps)):
                follow = next(
                    (s for s in defn.automatic_from(state) if s.when is not None and s.when(ctx)), None
                )
                if follow is None:
                    break
                auto_note = f"自动：{follow.label}" if follow.label else "自动"
                steps.append((follow, state, auto_note, {}))
                state = follow.dest

            closed_at = now if state in defn.terminal else None
            new_version = case.version + 1
            events = []
            prev_hash, seq = case.head_hash, case.last_seq
            for step, source, step_note, data in steps:
                seq += 1
                event = self._event(
                    case.id, seq, now, who, step.trigger, source, step.dest, step_note, data, prev_hash
                )
                events.append(event)
                prev_hash = event["hash"]
            updated = _UPDATE_CASE.execute(
                conn,
                {
                    "where_id": case.id,
                    "where_version": case.version,
                    "v_state": state,
                    "v_payload": merged,
                    "v_version": new_version,
                    "v_updated_at": now,
                    "v_closed_at": closed_at,
                    "v_last_seq": seq,
                    "v_head_hash": prev_hash,
                    "v_reference": defn.reference_of(merged),
                    "v_summary": defn.summary_of(merged),
                    "v_notice": defn.notice_of(merged),
                },
            )
            if updated != 1:
                raise Conflict(f"案件 #{case_id} 已被他人修改，请刷新后重试", rule="stale_version")
            for (step, _source, _note, _data), event in zip(steps, events, strict=True):
                event_id = _insert_event(conn, event)
                for hook in self.after_step:
                    hook(conn, ctx, step, event_id)
                if step.deadlines:
                    timers.apply_effects(
                        conn,
                        self.calculator,
                        case_id=case.id,
                        rule_set=case.rule_set,
                        effects=step.deadlines,
                        payload=merged,
                        event_id=event_id,
                        now=now,
                        today=today,
                    )
            if closed_at is not None and defn.has_deadlines:
                timers.close_all(conn, case_id=case.id, now=now, event_id=event_id)
        return FireResult(case.id, case.state, state, new_version, events, defn.notice_of(merged))

    @staticmethod
    def _event(
        case_id: int,
        seq: int,
        at: datetime,
        who: Actor,
        trigger: str,
        from_state: str,
        to_state: str,
        note: str,
        payload: dict[str, Any],
        prev_hash: str,
    ) -> dict[str, Any]:
        values = {
            "case_id": case_id,
            "seq": seq,
            "at": at,
            "actor_id": who.id,
            "actor_name": who.name,
            "trigger": trigger,
            "from_state": from_state,
            "to_state": to_state,
            "note": note,
            "payload": payload,
            "prev_hash": prev_hash,
        }
        values["hash"] = event_hash(**values)
        return values
