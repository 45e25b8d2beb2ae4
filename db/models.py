"""Tables. SQLModel declares them; the hot paths use their SQLAlchemy Core tables (`Model.__table__`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Organisation(SQLModel, table=True):
    """National office, Degree Center, provinces (2-digit code), units (5-digit code)."""

    __tablename__ = "organisations"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True, index=True)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # national | center | province | unit
    parent_id: int | None = Field(default=None, foreign_key="organisations.id", index=True)
    # 机关代字: the organ code in its document numbers, e.g. 渝学位办 in 渝学位办〔2026〕12号
    organ_code: str = Field(default="", max_length=32)
    created_at: datetime = _ts()


class Department(SQLModel, table=True):
    """A department inside a unit (seed 001 annexes 2-3, seed 004): the authentication lead department (牵头部门,
    level-1 accounts), verification departments (核查部门, level-2 accounts) with the records they may verify,
    colleges (二级学院) and managing departments (教务处, 继续教育学院, 国际交流与合作处)."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("unit_id", "name", name="uq_departments_unit_name"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="organisations.id", index=True)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # lead | verification | college | managing
    # What a verification department may verify (seed 001 annex 3); an empty list is 全部 (all).
    levels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # 学士 硕士 博士
    years: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # 往届 应届
    forms: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )  # 普通 成人/自考 来华留学
    head_name: str = Field(default="", max_length=64)  # 部门负责人
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=64)
    role: str = Field(max_length=32)
    org_id: int = Field(foreign_key="organisations.id", index=True)
    email: str | None = Field(default=None, max_length=254)
    active: bool = True
    created_at: datetime = _ts()
    # argon2id hash (argon2-cffi); None: the account cannot sign in to the web application.
    password_hash: str | None = Field(default=None, max_length=255)
    # The department inside a unit (level-1 / level-2 authentication accounts) and the contact details the
    # registration forms of seed 001 annexes 2-3 ask for.
    department_id: int | None = Field(default=None, foreign_key="departments.id", index=True)
    phone: str = Field(default="", max_length=32)
    mobile: str = Field(default="", max_length=32)
    fax: str = Field(default="", max_length=32)
    address: str = Field(default="", max_length=200)


def _open_cases_index(name: str, *columns: str) -> Index:
    """An index of open cases only, on PostgreSQL only (see Case's indexes)."""
    return Index(name, *columns, postgresql_where=text("closed_at IS NULL")).ddl_if(dialect="postgresql")


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_type_state", "type", "state"),
        # The work queue: open cases in order of their most urgent deadline, read in index order; type, state and
        # organisation in the index let the queue's filters be tested before a case row is read.
        Index("ix_cases_queue", "closed_at", "next_due_at", "id", "type", "state", "org_id"),
        # PostgreSQL does not take `closed_at IS NULL` as fixing the leading column above, so it sorted every
        # matching open case instead of reading 50 in order: it gets the same index of open cases only.
        # (SQLite's planner prefers the one above; this one would only cost it writes.)
        _open_cases_index("ix_cases_queue_open", "next_due_at", "id", "type", "state", "org_id"),
        Index("ix_cases_org_queue", "org_id", "closed_at", "type", "state", "next_due_at"),
        # A unit's queue: its open cases in due order (a unit of a province with a million cases holds ten
        # thousand). The partial form for PostgreSQL, for the reason above; SQLite takes `closed_at IS NULL` as
        # fixing the second column of the plain one.
        Index("ix_cases_unit_queue", "org_id", "closed_at", "next_due_at", "id", "type", "state").ddl_if(
            dialect="sqlite"
        ),
        _open_cases_index("ix_cases_unit_queue_open", "org_id", "next_due_at", "id", "type", "state"),
        # Counting a queue reads only this index: open cases by (type, state), with the organisation for scope.
        Index("ix_cases_open_kind", "closed_at", "type", "state", "org_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=32)
    state: str = Field(max_length=32)
    rule_set: str = Field(max_length=16)
    org_id: int = Field(foreign_key="organisations.id", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    opened_by: int = Field(foreign_key="users.id")
    opened_at: datetime = _ts()
    updated_at: datetime = _ts()
    closed_at: datetime | None = _ts(nullable=True)
    # Head of the tamper-evident event chain, so a transition needs no extra read.
    last_seq: int = 0
    head_hash: str = Field(default="", max_length=64)
    # Earliest due time of the case's open deadlines (running or breached), kept by every step that changes
    # a deadline, so the work queue sorts without looking at the deadlines table.
    next_due_at: datetime | None = _ts(nullable=True)
    # The case's reference (the certificate number for every case type), copied from the payload on every step.
    reference: str | None = Field(default=None, max_length=64, index=True)
    # What lists show as the subject (a name, or "N 条" for a batch), copied from the payload on every step:
    # lists never read the payload, which for a batch holds thousands of records.
    summary: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    # A warning every list and page shows with the case (e.g. 本地学位信息库无此记录), kept by every step from the
    # payload (`ProcessDefinition.notice_of`); empty when there is nothing to warn about.
    notice: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})


class CaseEvent(SQLModel, table=True):
    """Append-only audit trail. Each row hashes its content and the previous row of the same case."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    seq: int
    at: datetime = _ts()
    actor_id: int = Field(foreign_key="users.id")
    actor_name: str = Field(max_length=64)
    trigger: str = Field(max_length=32)
    from_state: str = Field(max_length=32)
    to_state: str = Field(max_length=32)
    note: str = ""
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Deadline(SQLModel, table=True):
    """A statutory limit on a case: timers are rows, swept by the scheduler, never in-memory jobs.

    status: running | paused | breached (past due; still open until `stopped_at`) | met | superseded | cancelled.
    `basis_date` + `basis_days` is what `due_date` is computed from (the start, or the resume after a pause),
    so a provisional date can be recomputed when the calendar gains the missing year.
    """

    __tablename__ = "deadlines"
    # The sweep's queries each range-scan one index, so their cost grows with what is due, not what is open.
    __table_args__ = (
        Index("ix_deadlines_status_due", "status", "due_at"),
        Index("ix_deadlines_unescalated", "breached_at", "status", "due_at"),
        Index("ix_deadlines_unreminded", "reminded_at", "status", "due_at"),
        Index("ix_deadlines_due_today", "due_today_at", "status", "due_at"),
        Index("ix_deadlines_provisional", "provisional", "stopped_at", "due_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    name: str = Field(max_length=48)
    label: str = Field(default="", max_length=64)
    owner: str = Field(
        default="unit", max_length=16
    )  # the level that must act: unit | province | national | center
    days: int
    working: bool = False
    start_date: date
    basis_date: date
    basis_days: int
    due_date: date
    due_at: datetime = _ts()
    provisional: bool = False
    status: str = Field(default="running", max_length=16)
    remaining_days: int | None = None  # kept while paused
    started_event_id: int | None = Field(default=None, foreign_key="case_events.id")
    stopped_event_id: int | None = Field(default=None, foreign_key="case_events.id")
    stopped_at: datetime | None = _ts(nullable=True)
    reminded_at: datetime | None = _ts(nullable=True)
    due_today_at: datetime | None = _ts(nullable=True)
    breached_at: datetime | None = _ts(nullable=True)


class DeadlineFinding(SQLModel, table=True):
    """What the sweep found, once per deadline and kind (the unique key makes "never twice" a database rule)."""

    __tablename__ = "deadline_findings"
    __table_args__ = (UniqueConstraint("deadline_id", "kind", name="uq_deadline_findings_once"),)

    id: int | None = Field(default=None, primary_key=True)
    deadline_id: int = Field(foreign_key="deadlines.id", index=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: str = Field(max_length=16)  # reminder | due_today | breach
    at: datetime = _ts()
    escalated_to: int | None = Field(default=None, foreign_key="organisations.id")


class CalendarDay(SQLModel, table=True):
    """One date of the official schedule: working or not, and why (春节, 国庆节, 调休上班, 周末...)."""

    __tablename__ = "calendar_days"

    day: date = Field(primary_key=True)
    working: bool
    name: str = Field(default="", max_length=32)


class CalendarYear(SQLModel, table=True):
    """A year the calendar covers completely; deadlines reaching other years are provisional."""

    __tablename__ = "calendar_years"

    year: int = Field(primary_key=True)
    source: str = Field(max_length=200)
    loaded_at: datetime = _ts()


class OutboxMessage(SQLModel, table=True):
    """A notification: always in the recipient's inbox; also e-mailed when SMTP is configured."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _ts()
    recipient_org_id: int | None = Field(default=None, foreign_key="organisations.id", index=True)
    recipient_user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    kind: str = Field(max_length=16)
    subject: str = Field(max_length=200)
    body: str
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    deadline_id: int | None = Field(default=None, foreign_key="deadlines.id")
    sent_at: datetime | None = _ts(nullable=True)
    attempts: int = 0
    last_error: str = ""


class DocSequence(SQLModel, table=True):
    """The next document number of an organisation in a year (allocated in the issuing transaction)."""

    __tablename__ = "doc_sequences"

    org_id: int = Field(foreign_key="organisations.id", primary_key=True)
    year: int = Field(primary_key=True)
    last: int = 0


class Document(SQLModel, table=True):
    """An issued letter or form: immutable, numbered, hashed, tied to the case event that issued it.

    `context` is the document's content (the fields its template prints, fixed at issue); `template_sha256`
    identifies the template it is printed with; `sha256` covers the kind, number, context and template. A
    re-issue is a new row with a new number whose `replaces_id` points to the document it replaces.
    """

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("org_id", "year", "seq", name="uq_documents_number"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="case_events.id")
    org_id: int = Field(foreign_key="organisations.id", index=True)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=200)
    year: int
    seq: int
    number: str = Field(max_length=64)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    template_sha256: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    issued_at: datetime = _ts()
    issued_by: int = Field(foreign_key="users.id")
    replaces_id: int | None = Field(default=None, foreign_key="documents.id")


class DocumentVoid(SQLModel, table=True):
    """A document made void (作废) by a later step (a withdrawn application, a report sent back, a cancelled case).

    Documents are append-only: the document stays as it was issued, with its number (never reused); this row says
    which step voided it and why. Append-only as well."""

    __tablename__ = "document_voids"

    document_id: int = Field(foreign_key="documents.id", primary_key=True)
    event_id: int = Field(foreign_key="case_events.id", index=True)
    at: datetime = _ts()
    actor_id: int = Field(foreign_key="users.id")
    reason: str = Field(default="", max_length=2000)


class DegreeRecord(SQLModel, table=True):
    """A filed degree record (学位授予信息). `data` holds every field by its English key."""

    __tablename__ = "degree_records"
    __table_args__ = (Index("ix_degree_records_unit", "unit_code", "conferral_date"),)

    id: int | None = Field(default=None, primary_key=True)
    cert_no: str = Field(max_length=32, unique=True, index=True)
    unit_code: str = Field(max_length=5)
    name: str = Field(max_length=100)
    id_number: str = Field(default="", max_length=40)
    degree_type: str = Field(default="", max_length=40)
    conferral_date: date
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="filed", max_length=16)  # filed | revoked
    publishable: bool = True
    photo_missing: bool = False
    filed_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)
    source: str = Field(default="", max_length=200)
    # The import that brought the record (`record_imports`); NULL for a record filed by a case. Status, besides
    # filed | revoked: `working` (a unit's working copy) and `pending` (a unit's filed data awaiting the second
    # person); `publishable` is true only for what filing or the Degree Center / national office made public.
    import_id: int | None = Field(default=None, foreign_key="record_imports.id")


class RecordChange(SQLModel, table=True):
    """Every change to a filed record, with the case that made it (old values are never lost)."""

    __tablename__ = "record_changes"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="degree_records.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    action: str = Field(max_length=16)  # filed | changed | revoked | photo
    field: str = Field(default="", max_length=40)
    old_value: str = ""
    new_value: str = ""
    at: datetime = _ts()
    actor_id: int | None = Field(default=None, foreign_key="users.id")


class QueryLog(SQLModel, table=True):
    """Every online certificate query (seed 000), answered or not."""

    __tablename__ = "query_log"
    __table_args__ = (Index("ix_query_log_client_at", "client", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    client: str = Field(max_length=64)
    member: bool = False
    cert_no: str = Field(max_length=32)
    found: bool = False
    limited: bool = False


class LoginAttempt(SQLModel, table=True):
    """Sign-in attempts, kept for throttling (per account and per address) and for the security log."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    username: str = Field(max_length=64)
    address: str = Field(max_length=64)
    success: bool = False


class AuthorizationCode(SQLModel, table=True):
    """A supervising leader's one-time authorization code for an important step (seed 003 item 7).

    Only the SHA-256 of the code is stored; the code itself goes to the leader's inbox. It is bound to one
    case and trigger, expires, and is used at most once (`used_at`, set in the step's own transaction).
    """

    __tablename__ = "authorization_codes"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    trigger: str = Field(max_length=32)
    requested_by: int = Field(foreign_key="users.id")
    leader_id: int = Field(foreign_key="users.id")
    code_sha256: str = Field(max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)
    attempts: int = 0


class Attachment(SQLModel, table=True):
    """A file uploaded to a case (proofs, resolution scans). Stored outside the web root under `stored_name`."""

    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    filename: str = Field(max_length=200)  # sanitised original name, for display and download
    stored_name: str = Field(max_length=100)  # <sha256>.<ext> in the attachment directory
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    uploaded_by: int = Field(foreign_key="users.id")
    uploaded_at: datetime = _ts()
    # What the file is for (`cases.attachments.PURPOSES`, e.g. the revocation resolution); a step whose letter
    # lists an attachment requires one of its purpose. Empty: another proof.
    purpose: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})


class RecordImport(SQLModel, table=True):
    """Every import of a record file (who, when, which organisation, the file's SHA-256, rows accepted and refused),
    written whether the file was taken or refused. Append-only; a confirmation is a `RecordImportConfirmation`.

    `kind`: national (by the Degree Center or the national office: the national database, public at once),
    working (a unit's working copy, for checks) or filed (a unit's filed data: pending until a second person of the
    unit confirms it). `status` as imported: public | working | pending | refused."""

    __tablename__ = "record_imports"
    __table_args__ = (Index("ix_record_imports_unit_at", "unit_code", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    actor_id: int = Field(foreign_key="users.id")
    org_id: int = Field(foreign_key="organisations.id")  # the importer's organisation
    unit_code: str = Field(max_length=5)  # the unit whose records these are
    filename: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    size: int = 0
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16)
    accepted: int = 0
    refused: int = 0
    message: str = Field(default="", max_length=500)  # the first refusal, for a refused file


class RecordImportConfirmation(SQLModel, table=True):
    """The second person's confirmation of a unit's import of its filed data (one per import). Append-only."""

    __tablename__ = "record_import_confirmations"

    import_id: int = Field(foreign_key="record_imports.id", primary_key=True)
    at: datetime = _ts()
    actor_id: int = Field(foreign_key="users.id")
