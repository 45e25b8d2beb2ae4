"""Organisation kinds, roles and their labels in the user's language."""

from __future__ import annotations

UNIT, PROVINCE, NATIONAL, CENTER = "unit", "province", "national", "center"

LEVELS = {
    UNIT: "学位授予单位",
    PROVINCE: "省级学位委员会办公室",
    NATIONAL: "国务院学位委员会办公室",
    CENTER: "学位中心",
}

# Roles allowed for each kind of organisation.
ROLES_BY_KIND: dict[str, dict[str, str]] = {
    UNIT: {
        "collector": "采集员",
        "verifier": "校核员",
        "lead": "认证牵头部门（一级账号）",
        "checker": "学位信息核查部门（二级账号）",
        "admin": "单位管理员",
        "leader": "主管领导（授权码）",
    },
    PROVINCE: {"reviewer": "审核员", "admin": "省级管理员"},
    NATIONAL: {"officer": "经办人员", "admin": "管理员"},
    CENTER: {"officer": "经办人员", "admin": "管理员"},
}

ROLE_LABELS = {role: label for roles in ROLES_BY_KIND.values() for role, label in roles.items()}

# A second person checks what a collector entered (seed 002 art. 12(2), seed 004 art. 11(2)).
VERIFY_ROLES = ("verifier", "admin")

# GB/T 2260 province-level codes.
PROVINCE_CODES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
    "31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区", "46": "海南省",
    "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
    "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
    "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}  # fmt: skip
