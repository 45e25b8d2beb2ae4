"""Accounts: passwords (argon2id), sign-in with throttling, the supervising leader's one-time codes.

Nothing here knows about HTTP: the web layer passes the caller's address and shows the messages.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from db.clock import to_utc
from db.models import AuthorizationCode, LoginAttempt, Organisation, OutboxMessage, User
from workflow import Actor, Forbidden, InvalidPayload, NotFound

USERS = User.__table__
ORGS = Organisation.__table__
ATTEMPTS = LoginAttempt.__table__
CODES = AuthorizationCode.__table__
OUTBOX = OutboxMessage.__table__

_HASHER = PasswordHasher()  # argon2id with the library's current parameters
MIN_PASSWORD = 8
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
CODE_LIFETIME = timedelta(minutes=10)
CODE_MAX_ATTEMPTS = 5
# Any valid hash, so that an unknown user costs the same time as a wrong password.
_DUMMY_HASH = _HASHER.hash("degreeflow-not-a-password")


# The column sizes of db.models (organisations.name, users.name, users.email).
ORG_NAME_MAX = 100
PERSON_NAME_MAX = 64
EMAIL_MAX = 254
# The "valid e-mail address" of the HTML standard (what a browser's <input type=email> accepts), with at least
# one dot in the domain: no spaces, line breaks, angle brackets, parentheses, quotes or commas.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_email(email: str) -> None:
    """Refuse an address a mail header could not carry safely (InvalidPayload naming the field and rule)."""
    if len(email) > EMAIL_MAX:
        raise InvalidPayload(
            f"字段 email（邮箱）：不能超过 {EMAIL_MAX} 个字符，收到 {len(email)} 个",
            field="email",
            rule="email_length",
        )
    if not _EMAIL_RE.fullmatch(email) or ".." in email or email.startswith("."):
        raise InvalidPayload(
            f"字段 email（邮箱）：格式不正确，应为 name@example.edu.cn 形式（英文字母、数字及 . _ - + 等，"
            f"不含空格、换行、尖括号或括号），收到“{_shown(email)}”",
            field="email",
            rule="email_format",
        )


def _shown(value: str, limit: int = 80) -> str:
    """A value to quote in a message: control characters escaped (one line), long values cut."""
    value = value if len(value) <= limit else value[:limit] + "…"
    return _CONTROL_RE.sub(lambda found: repr(found.group())[1:-1], value)


def check_name(value: str, field: str, label: str, limit: int) -> None:
    """A person's or an organisation's name: at most `limit` characters (the column size), no control characters."""
    if len(value) > limit:
        raise InvalidPayload(
            f"字段 {field}（{label}）：不能超过 {limit} 个字符，收到 {len(value)} 个",
            field=field,
            rule="name_length",
        )
    if _CONTROL_RE.search(value):
        raise InvalidPayload(
            f"字段 {field}（{label}）：不能包含换行等控制字符", field=field, rule="name_control"
        )


class SignInRefused(Forbidden):
    code = "sign_in_refused"


class Throttled(Forbidden):
    code = "throttled"


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidPayload(
            f"字段 password（密码）：至少 {MIN_PASSWORD} 个字符", field="password", rule="password_length"
        )
    if len(password) > 256:
        raise InvalidPayload(
            "字段 password（密码）：不能超过 256 个字符", field="password", rule="password_length"
        )
    return _HASHER.hash(password)


def set_password(conn: Connection, username: str, password: str) -> None:
    hashed = hash_password(password)
    done = conn.execute(update(USERS).where(USERS.c.username == username).values(password_hash=hashed))
    if done.rowcount != 1:
        raise NotFound(f"用户 {username} 不存在", field="username", rule="user_exists")


def _failures(conn: Connection, column, value: str, since: datetime) -> int:  # type: ignore[no-untyped-def]
    return int(
        conn.execute(
            select(func.count())
            .select_from(ATTEMPTS)
            .where(column == value, ATTEMPTS.c.at >= since, ATTEMPTS.c.success.is_(False))
        ).scalar_one()
    )


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    username: str
    rehash: str | None  # a new hash when the stored one used older parameters


def authenticate(conn: Connection, username: str, password: str, address: str, now: datetime) -> SignedIn:
    """Check a password. Too many recent failures for the account or the address refuse without checking."""
    username = username.strip()[:64]
    address = address[:64]
    since = now - WINDOW
    minutes = int(WINDOW.total_seconds() // 60)
    if _failures(conn, ATTEMPTS.c.username, username, since) >= MAX_FAILURES_PER_ACCOUNT:
        raise Throttled(
            f"该账号 {minutes} 分钟内登录失败次数过多，已暂时锁定，请稍后再试或联系管理员",
            rule="login_throttle_account",
        )
    if _failures(conn, ATTEMPTS.c.address, address, since) >= MAX_FAILURES_PER_ADDRESS:
        raise Throttled(f"本地址 {minutes} 分钟内登录失败次数过多，请稍后再试", rule="login_throttle_address")
    row = conn.execute(
        select(USERS.c.id, USERS.c.username, USERS.c.password_hash, USERS.c.active).where(
            USERS.c.username == username
        )
    ).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
        ok = row is not None and bool(row.password_hash) and bool(row.active)
    except (VerificationError, InvalidHashError):
        ok = False
    conn.execute(insert(ATTEMPTS).values(at=now, username=username, address=address, success=ok))
    if not ok or row is None:
        raise SignInRefused("用户名或密码不正确（或账号已停用）", rule="bad_credentials", field="password")
    rehash = _HASHER.hash(password) if _HASHER.check_needs_rehash(stored) else None
    if rehash:
        conn.execute(update(USERS).where(USERS.c.id == row.id).values(password_hash=rehash))
    return SignedIn(row.id, row.username, rehash)


# -- the supervising leader's authorization code (seed 003 item 7) -----------------------------------------
def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def request_code(
    conn: Connection, actor: Actor, case_id: int, trigger: str, step_label: str, now: datetime
) -> dict[str, str]:
    """Create a one-time code for this case and step and put it in the unit's leaders' inboxes."""
    leaders = conn.execute(
        select(USERS.c.id, USERS.c.name).where(
            USERS.c.org_id == actor.org_id, USERS.c.role == "leader", USERS.c.active.is_(True)
        )
    ).all()
    if not leaders:
        raise Forbidden(
            f"{actor.org_name} 尚未登记主管领导账号（角色 leader），无法发送授权码",
            rule="leader_account_missing",
        )
    code = f"{secrets.randbelow(10**6):06d}"
    for leader in leaders:
        conn.execute(
            insert(CODES).values(case_id=case_id, trigger=trigger, requested_by=actor.id, leader_id=leader.id,
                                 code_sha256=_digest(code), created_at=now, expires_at=now + CODE_LIFETIME)
        )  # fmt: skip
        conn.execute(
            insert(OUTBOX).values(
                created_at=now, recipient_user_id=leader.id, kind="authorization",
                subject=f"授权码：案件 #{case_id}“{step_label}”",
                body=(f"{actor.name} 申请办理案件 #{case_id} 的“{step_label}”。如同意，请将授权码 {code} 告知经办人"
                      f"（{int(CODE_LIFETIME.total_seconds() // 60)} 分钟内有效，仅可使用一次）。"),
                case_id=case_id,
            )
        )  # fmt: skip
    return {"leaders": "、".join(leader.name for leader in leaders)}


def use_code(
    conn: Connection, actor: Actor, case_id: int, trigger: str, code: str | None, now: datetime
) -> None:
    """Consume a valid code for this case and step (inside the step's transaction) or refuse, naming why."""
    field = "authorization_code"
    if not code or not code.strip():
        raise InvalidPayload(
            "字段 authorization_code（授权码）：此操作须输入主管领导的授权码，请先申请授权码", field=field,
            rule="authorization_code_required",
        )  # fmt: skip
    rows = conn.execute(
        select(CODES).where(
            CODES.c.case_id == case_id, CODES.c.trigger == trigger, CODES.c.requested_by == actor.id,
            CODES.c.used_at.is_(None),
        ).order_by(CODES.c.id.desc())
    ).all()  # fmt: skip
    live = [r for r in rows if to_utc(r.expires_at) > to_utc(now)]
    if not live:
        raise InvalidPayload(
            "字段 authorization_code（授权码）：授权码已过期或未申请，请重新申请", field=field,
            rule="authorization_code_expired",
        )  # fmt: skip
    live = [r for r in live if r.attempts < CODE_MAX_ATTEMPTS]
    if not live:
        raise InvalidPayload(
            f"字段 authorization_code（授权码）：输入错误已达 {CODE_MAX_ATTEMPTS} 次，请重新申请授权码", field=field,
            rule="authorization_code_exhausted",
        )  # fmt: skip
    match = next((r for r in live if secrets.compare_digest(r.code_sha256, _digest(code))), None)
    if match is None:
        raise InvalidPayload(
            "字段 authorization_code（授权码）：授权码不正确", field=field, rule="authorization_code_wrong"
        )
    conn.execute(update(CODES).where(CODES.c.id == match.id).values(used_at=now))


def count_wrong_code(conn: Connection, actor: Actor, case_id: int, trigger: str) -> None:
    """A wrong code counts against every open code of this request (so guessing is bounded)."""
    conn.execute(
        update(CODES)
        .where(CODES.c.case_id == case_id, CODES.c.trigger == trigger, CODES.c.requested_by == actor.id,
               CODES.c.used_at.is_(None))
        .values(attempts=CODES.c.attempts + 1)
    )  # fmt: skip
