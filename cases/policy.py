"""Who may act on which case: a unit only its own cases, a province only its units', national levels all."""

from __future__ import annotations

from cases.units import may_see
from cases.vocabulary import CENTER, NATIONAL, PROVINCE, UNIT
from workflow import Actor, CaseView


def scope(actor: Actor, case: CaseView) -> str | None:
    if actor.org_kind in (NATIONAL, CENTER):
        return None
    if actor.org_kind == UNIT:
        if case.org_id == actor.org_id:
            if not may_see(actor.role, actor.department_id, case.type, case.payload):
                return "学位信息核查部门（二级账号）只能办理分配给本部门的认证核查任务"
            return None
        return f"学位授予单位只能办理本单位的案件：{actor.org_name} 不能办理 {case.org_name} 的案件"
    if actor.org_kind == PROVINCE:
        if case.org_parent_id == actor.org_id:
            return None
        return f"省级学位委员会办公室只能办理本省（区、市）所属单位的案件：{case.org_name} 不属于 {actor.org_name}"
    return f"未知的组织类型 {actor.org_kind}"
