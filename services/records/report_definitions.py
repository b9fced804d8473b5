"""The written, versioned definitions of the management KPIs (统计口径).

Each KPI names its formula, what it counts and what it leaves out; the API serves them, every
report carries them, and a change to how a KPI is computed bumps its `version` (and the set's
`DEFINITIONS_VERSION`). Follow-up KPIs use followup's own definitions (services/followup/kpis.py):
first-time fix on fix orders, major complaint rate against delivered orders, NPS 9–10 / 0–6.
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal

DEFINITIONS_VERSION = "2026.11-1"

Unit = Literal["count", "CNY", "hours", "CNY/hour", "ratio", "score", "points"]
Drill = Literal["orders", "surveys", "complaints", "appointments"]


@dataclass(frozen=True)
class Definition:
    id: str
    version: int
    name_zh: str
    name_en: str
    unit: Unit
    formula: str
    counts: str
    excludes: str
    drill: Drill = "orders"
    # A target the KPI is held against, and whether good is below or at/above it.
    target: float | None = None
    good_when: Literal["below", "at_or_above"] | None = None

    def name(self, lang: str) -> str:
        return self.name_zh if lang.startswith("zh") else self.name_en

    def formula_in(self, lang: str) -> str:
        return CHINESE[self.id][0] if lang.startswith("zh") else self.formula

    def excludes_in(self, lang: str) -> str:
        return CHINESE[self.id][1] if lang.startswith("zh") else self.excludes

    def public(self) -> dict[str, Any]:
        zh_formula, zh_excludes = CHINESE[self.id]
        return {**asdict(self), "formula_zh": zh_formula, "excludes_zh": zh_excludes}


PERIOD_RULE_ZH = (
    "统计期为门店时区的完整自然日：自首日 00:00 起，至末日次日 00:00 止（集团按集团时区）。"
)

PERIOD_RULE = (
    "A period is whole local days of the branch's time zone (the group: the group's zone), "
    "from the first day's 00:00 to the day after the last day's 00:00."
)

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "repair_orders_opened",
        1,
        "开单数",
        "Repair orders opened",
        "count",
        "count of repair orders opened in the period",
        "every repair order whose opened time falls in the period",
        "orders opened before or after the period; nothing else",
    ),
    Definition(
        "repair_orders_delivered",
        1,
        "交车数",
        "Repair orders delivered",
        "count",
        "count of repair orders delivered (handed back) in the period",
        "every repair order whose delivery time falls in the period",
        "orders not yet delivered; orders delivered outside the period",
    ),
    Definition(
        "revenue_total",
        1,
        "营业额（不含税）",
        "Revenue (net of tax)",
        "CNY",
        "sum of the net of every invoice line settled in the period, all pay types",
        "labour, parts and fees of customer, warranty and internal pay; net after discount",
        "tax; orders not settled in the period (revenue is booked on the settlement day)",
    ),
    Definition(
        "revenue_labour",
        1,
        "工时收入",
        "Labour revenue",
        "CNY",
        "sum of the net of labour lines settled in the period, all pay types",
        "labour lines of invoices settled in the period",
        "parts, fees, tax",
    ),
    Definition(
        "revenue_parts",
        1,
        "配件收入",
        "Parts revenue",
        "CNY",
        "sum of the net of parts lines settled in the period, all pay types",
        "parts lines of invoices settled in the period",
        "labour, fees, tax",
    ),
    Definition(
        "revenue_fees",
        1,
        "其他费用收入",
        "Fees revenue",
        "CNY",
        "sum of the net of fee lines (anything not labour or parts) settled in the period",
        "fee lines (environmental fee, sublet, …) of invoices settled in the period",
        "labour, parts, tax",
    ),
    Definition(
        "hours_sold",
        1,
        "售出工时",
        "Hours sold",
        "hours",
        "sum of the quantity (flat-rate hours) of labour lines settled in the period",
        "labour lines of all pay types on invoices settled in the period",
        "parts and fee lines; hours worked (clocked) — those are in efficiency",
    ),
    Definition(
        "effective_labour_rate",
        1,
        "有效工时单价",
        "Effective labour rate",
        "CNY/hour",
        "labour revenue ÷ hours sold, both of invoices settled in the period",
        "every labour line, all pay types, after discount",
        "tax; a period with no hours sold has no rate",
    ),
    Definition(
        "technician_efficiency",
        1,
        "技师效率",
        "Technician efficiency",
        "ratio",
        "flat-rate hours of jobs delivered in the period ÷ hours clocked on those same jobs "
        "(any day); per technician the jobs assigned to them",
        "delivered jobs with a technician and at least one closed clock segment",
        "jobs with no clocked time (nothing to compare); jobs of orders not yet delivered",
    ),
    Definition(
        "technician_utilisation",
        1,
        "技师利用率",
        "Technician utilisation",
        "ratio",
        "hours clocked on jobs in segments ending in the period ÷ available hours; available "
        "= shift hours (RECORDS_REPORT_SHIFT_HOURS, 8) × local days the technician clocked",
        "every closed clock segment (done or paused) ending in the period",
        "days a technician clocked nothing (no attendance data reaches records: a day "
        "without any clock counts as absent, not as idle)",
    ),
    Definition(
        "on_time_delivery_rate",
        1,
        "准时交车率",
        "On-time delivery rate",
        "ratio",
        "orders delivered at or before the last promise the customer agreed to ÷ orders "
        "delivered in the period with a promise",
        "deliveries in the period whose delivered event carries a promised time",
        "deliveries without a promise",
    ),
    Definition(
        "first_time_fix_rate",
        1,
        "一次修复率",
        "First-time fix rate",
        "ratio",
        "1 − comebacks ÷ fix orders, both among orders delivered in the period; a comeback is "
        "an order followup recorded as coming back for the same op group within its window",
        "fix orders: delivered orders with at least one job that is not maintenance or recall",
        "maintenance-only and recall-only orders; the rate of a recent period can still fall "
        "while comebacks of its orders are being recorded",
    ),
    Definition(
        "follow_up_rate",
        1,
        "回访率",
        "Follow-up rate",
        "ratio",
        "orders delivered in the period whose follow-up visit reached the customer ÷ orders "
        "delivered in the period",
        "visits closed as surveyed, declined_survey or contact_refused (reached)",
        "wrong numbers, expired visits; customers who refused contact still count in the "
        "denominator",
    ),
    Definition(
        "csi",
        1,
        "客户满意度（CSI）",
        "Customer satisfaction (CSI)",
        "score",
        "mean of the overall score (1–10) of surveys answered in the period",
        "every survey answered in the period",
        "visits without a survey",
        drill="surveys",
    ),
    Definition(
        "nps",
        1,
        "净推荐值（NPS）",
        "Net promoter score (NPS)",
        "points",
        "% promoters (9–10) − % detractors (0–6) of surveys answered in the period",
        "every survey answered in the period",
        "visits without a survey",
        drill="surveys",
    ),
    Definition(
        "servqual_gap",
        1,
        "SERVQUAL 差距",
        "SERVQUAL gap",
        "points",
        "per dimension: mean perception − mean expectation (1–7) of surveys answered in the "
        "period; the KPI is the mean of the five dimensions' gaps",
        "surveys with SERVQUAL answers (reliability, responsiveness, assurance, empathy, "
        "tangibles)",
        "surveys without SERVQUAL answers; a dimension nobody answered",
        drill="surveys",
    ),
    Definition(
        "complaint_rate",
        1,
        "投诉率",
        "Complaint rate",
        "ratio",
        "complaints opened in the period ÷ orders delivered in the period",
        "every complaint case opened in the period, any origin and severity",
        "nothing; a complaint about an order delivered earlier still counts in its period",
        drill="complaints",
    ),
    Definition(
        "major_complaint_rate",
        1,
        "重大投诉率",
        "Major complaint rate",
        "ratio",
        "major complaints opened in the period ÷ orders delivered in the period; held "
        "against the 1% target (met when below)",
        "complaint cases opened in the period whose newest severity is major",
        "minor complaints",
        drill="complaints",
        target=0.01,
        good_when="below",
    ),
    Definition(
        "appointment_show_rate",
        1,
        "预约到店率",
        "Appointment show rate",
        "ratio",
        "appointments scheduled in the period that arrived ÷ those that arrived or were no-shows",
        "appointments scheduled in the period and closed as arrived or no_show",
        "cancelled appointments; appointments not closed yet",
        drill="appointments",
    ),
)

BY_ID = {d.id: d for d in DEFINITIONS}

# The formula and what is left out, in Chinese (same meaning as the English above).
CHINESE: dict[str, tuple[str, str]] = {
    "repair_orders_opened": ("统计期内开立的维修工单数", "统计期以外开立的工单"),
    "repair_orders_delivered": ("统计期内交车的维修工单数", "未交车或统计期外交车的工单"),
    "revenue_total": (
        "统计期内结算的全部发票行净额之和（客户付费、保修、内部）",
        "税额；统计期内未结算的工单（按结算日计收入）",
    ),
    "revenue_labour": ("统计期内结算的工时行净额之和，全部付费类型", "配件、费用、税额"),
    "revenue_parts": ("统计期内结算的配件行净额之和，全部付费类型", "工时、费用、税额"),
    "revenue_fees": ("统计期内结算的其他费用行（非工时、非配件）净额之和", "工时、配件、税额"),
    "hours_sold": ("统计期内结算的工时行数量（标准工时）之和", "配件和费用行；实际打卡工时"),
    "effective_labour_rate": (
        "工时收入 ÷ 售出工时（均按统计期内结算）",
        "税额；无售出工时则无单价",
    ),
    "technician_efficiency": (
        "统计期内交车的作业项目的标准工时 ÷ 这些项目的实际打卡工时；按技师统计其名下项目",
        "没有打卡记录的项目；未交车工单的项目",
    ),
    "technician_utilisation": (
        "统计期内结束的打卡工时 ÷ 可用工时（班次工时 × 技师有打卡的天数）",
        "技师没有任何打卡的日子（无考勤数据，按缺勤计，不按空闲计）",
    ),
    "on_time_delivery_rate": (
        "在客户最后认可的承诺时间之前（含）交车的工单 ÷ 统计期内有承诺时间的交车工单",
        "没有承诺时间的交车",
    ),
    "first_time_fix_rate": (
        "1 − 返修数 ÷ 维修类工单数，均为统计期内交车的工单；返修指回访记录为同一作业组在期限内返厂",
        "仅保养或仅召回的工单；近期统计期的比率可能随返修记录下降",
    ),
    "follow_up_rate": (
        "统计期内交车且回访联系到客户的工单 ÷ 统计期内交车工单",
        "号码错误、回访过期；拒绝联系的客户仍计入分母",
    ),
    "csi": ("统计期内完成问卷的总体满意度（1–10）平均值", "没有问卷的回访"),
    "nps": ("推荐者（9–10）百分比 − 贬损者（0–6）百分比，统计期内问卷", "没有问卷的回访"),
    "servqual_gap": (
        "各维度：感知均值 − 期望均值（1–7）；指标为五个维度差距的平均值",
        "没有 SERVQUAL 回答的问卷；无人回答的维度",
    ),
    "complaint_rate": (
        "统计期内新开投诉数 ÷ 统计期内交车工单数",
        "无；对早前交车工单的投诉计入其开立的统计期",
    ),
    "major_complaint_rate": (
        "统计期内新开重大投诉数 ÷ 统计期内交车工单数；目标 1%（低于目标为达标）",
        "一般投诉",
    ),
    "appointment_show_rate": (
        "统计期内预约且到店的 ÷ 到店与爽约之和",
        "已取消的预约；尚未关闭的预约",
    ),
}


# What each report format is served as (the formats are laid out by report_output).
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
}
