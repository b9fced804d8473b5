"""The staff pages' words in Chinese (the default) and English, and the services'
problems told in the user's language next to the field they name."""

import re
from typing import Any

from services.staff.api import Answer

LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "app": "售后工作台",
        "lang_name": "中文",
        "other_lang": "English",
        "sign_in": "登录",
        "sign_out": "退出",
        "sign_in_title": "登录售后工作台",
        "sign_in_as": "以此身份登录",
        "sign_in_provider": "通过统一身份认证登录",
        "dev_sign_in_note": "开发环境：选择一位演示员工登录（未配置身份提供方）。",
        "session_expired": "登录已过期，请重新登录；登录后会回到刚才的页面。",
        "offline": "网络已断开：页面内容可能不是最新的，提交的表单会在联网后重试。",
        "retry": "重试",
        "role_advisor": "服务顾问",
        "role_foreman": "调度",
        "role_technician": "技师",
        "role_qc": "质检员",
        "role_cashier": "收银员",
        "role_manager": "售后经理",
        "role_followup_agent": "回访专员",
        "role_records_clerk": "资料员",
        "nav_today": "今日预约",
        "nav_desk": "前台查询",
        "nav_register": "登记客户",
        "today_title": "今日预约与到店",
        "day": "日期",
        "time": "时间",
        "plate": "车牌",
        "customer": "客户",
        "mobile": "手机",
        "concerns": "客户描述",
        "planned_hours": "预计工时",
        "status": "状态",
        "actions": "操作",
        "booked": "已预约",
        "arrived": "已到店",
        "no_show": "未到店",
        "cancelled": "已取消",
        "no_appointments": "这一天没有预约。",
        "mark_arrived": "到店接车",
        "odometer_km": "里程 (km)",
        "open_intake": "开始接车",
        "cancel": "取消",
        "booked_count": "预约",
        "arrived_count": "已到店",
        "waiting_count": "待到店",
        "forbidden": "您的角色无权打开此页面。",
        "not_found": "找不到此页面。",
        "unreachable": "{service} 服务暂时无法连接，请稍后重试。",
        "changed": "在您打开后，此记录已被他人修改：",
        "changed_field": "{field}：现在是「{now}」",
        "reload": "重新载入",
        "saved": "已保存",
        "error_generic": "无法完成：{detail}",
        "field_invalid": "格式不正确",
        "field_required": "必填",
        "prev_day": "前一天",
        "next_day": "后一天",
        "today": "今天",
        "intake": "接车单",
        "search_label": "车牌、车架号后六位、手机号或姓名",
        "search_hint": "输入即查询；车牌可只输入一部分。",
        "search_by": "查询方式",
        "search_auto": "自动识别",
        "search_plate": "车牌",
        "search_vin_last6": "车架号后六位",
        "search_phone": "手机号",
        "search_name": "姓名",
        "search": "查询",
        "vehicle": "车辆",
        "open": "打开",
        "no_hits": "没有找到。",
        "register_title": "登记客户与车辆",
        "name": "姓名",
        "customer_language": "客户语言",
        "model": "车型",
        "colour": "颜色",
        "register": "登记",
        "vin_known": "本店已有此车，打开车辆",
        "vin_count": "已输入 {n} / 17 位",
        "last_km": "上次里程",
        "book": "预约",
        "walk_in": "直接接车",
        "starts_at": "到店时间",
        "concerns_words": "客户描述（客户原话，每行一条）",
        "concerns_hint": "照客户的原话记录，不要改写。",
        "free_hours": "可约工时",
        "over_booked": "这一天已约满。以下日期还有空位：",
        "override_reason": "里程低于上次记录的原因",
    },
    "en": {
        "app": "Workshop desk",
        "lang_name": "English",
        "other_lang": "中文",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "sign_in_title": "Sign in to the workshop desk",
        "sign_in_as": "Sign in as",
        "sign_in_provider": "Sign in with the company account",
        "dev_sign_in_note": "Development: pick a demo member of staff (no identity provider).",
        "session_expired": "Your session expired. Sign in again to return to the page.",
        "offline": "Offline: this page may be out of date; forms are sent again once online.",
        "retry": "Try again",
        "role_advisor": "Service advisor",
        "role_foreman": "Foreman",
        "role_technician": "Technician",
        "role_qc": "QC inspector",
        "role_cashier": "Cashier",
        "role_manager": "Service manager",
        "role_followup_agent": "Follow-up agent",
        "role_records_clerk": "Records clerk",
        "nav_today": "Today",
        "nav_desk": "Desk search",
        "nav_register": "New customer",
        "today_title": "Today's appointments and arrivals",
        "day": "Day",
        "time": "Time",
        "plate": "Plate",
        "customer": "Customer",
        "mobile": "Mobile",
        "concerns": "Concerns",
        "planned_hours": "Planned hours",
        "status": "Status",
        "actions": "Actions",
        "booked": "Booked",
        "arrived": "Arrived",
        "no_show": "No-show",
        "cancelled": "Cancelled",
        "no_appointments": "No appointments on this day.",
        "mark_arrived": "Check in",
        "odometer_km": "Odometer (km)",
        "open_intake": "Start the intake",
        "cancel": "Cancel",
        "booked_count": "Booked",
        "arrived_count": "Arrived",
        "waiting_count": "Expected",
        "forbidden": "Your role cannot open this page.",
        "not_found": "No such page.",
        "unreachable": "The {service} service cannot be reached; try again shortly.",
        "changed": "Someone changed this record after you opened it:",
        "changed_field": "{field}: now “{now}”",
        "reload": "Reload",
        "saved": "Saved",
        "error_generic": "Could not be done: {detail}",
        "field_invalid": "Not valid",
        "field_required": "Required",
        "prev_day": "Previous day",
        "next_day": "Next day",
        "today": "Today",
        "intake": "Intake",
        "search_label": "Plate, last six of the VIN, phone or name",
        "search_hint": "Results as you type; part of a plate is enough.",
        "search_by": "Search by",
        "search_auto": "Detect",
        "search_plate": "Plate",
        "search_vin_last6": "VIN last six",
        "search_phone": "Phone",
        "search_name": "Name",
        "search": "Search",
        "vehicle": "Vehicle",
        "open": "Open",
        "no_hits": "Nothing found.",
        "register_title": "Register a customer and vehicle",
        "name": "Name",
        "customer_language": "Customer's language",
        "model": "Model",
        "colour": "Colour",
        "register": "Register",
        "vin_known": "This branch has this car: open it",
        "vin_count": "{n} of 17 characters",
        "last_km": "Last reading",
        "book": "Book",
        "walk_in": "Take in now",
        "starts_at": "Arrives at",
        "concerns_words": "Concerns (the customer's words, one per line)",
        "concerns_hint": "Write what the customer says, as they say it.",
        "free_hours": "free hours",
        "over_booked": "That day is fully booked. These days have room:",
        "override_reason": "Why the odometer is lower than last time",
    },
}


def labels(lang: str) -> dict[str, str]:
    return LABELS.get(lang, LABELS["zh-CN"])


# The services speak English in their problems; these are the messages a desk meets
# most, said again in Chinese. Anything else keeps the service's words after a
# Chinese lead, so nothing is lost.
_ZH_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Field required"), "必填"),
    (re.compile(r"a VIN has 17 characters, this one has (\d+)"), r"车架号应为 17 位，当前为 \1 位"),
    (
        re.compile(r"check digit at position 9 is '(.)', expected '(.)'"),
        r"第 9 位校验位是 \1，应为 \2",
    ),
    (re.compile(r"contains I, O or Q|letters I, O and Q", re.I), "车架号不能包含字母 I、O、Q"),
    (re.compile(r"String should match pattern"), "格式不正确"),
    (re.compile(r"String should have at least (\d+) character"), r"至少 \1 个字符"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"应不小于 \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"应不大于 \1"),
    (re.compile(r"Input should be a valid integer"), "应为整数"),
    (re.compile(r"Input should be a valid number"), "应为数字"),
    (re.compile(r"lower than the last reading", re.I), "低于上次记录的里程"),
    (re.compile(r"is already registered"), "已登记过"),
]


# --- words of other pages' packages (e.g. pages/floor/labels.py), merged in at import ----


def add_words(
    labels: dict[str, dict[str, str]], messages: tuple[tuple[re.Pattern[str], str], ...] = ()
) -> None:
    """A page package's labels and Chinese service messages joined to the catalog; a key
    the catalog already has keeps its words."""
    for lang, words in labels.items():
        for key, value in words.items():
            LABELS[lang].setdefault(key, value)
    _ZH_MESSAGES.extend(messages)


def say(message: str, lang: str) -> str:
    if lang != "zh-CN":
        return message
    for pattern, chinese in _ZH_MESSAGES:
        found = pattern.search(message)
        if found:
            return found.expand(chinese)
    return f"{LABELS['zh-CN']['field_invalid']}（{message}）"


def field_errors(answer: Answer, lang: str) -> dict[str, str]:
    """The problem's field errors in the user's language, by field name."""
    return {name: say(message, lang) for name, message in answer.field_errors().items()}


def problem_text(answer: Answer, lang: str) -> str:
    problem: dict[str, Any] = answer.problem or {}
    detail = str(problem.get("detail") or problem.get("title") or answer.status)
    return labels(lang)["error_generic"].format(detail=say(detail, lang))
