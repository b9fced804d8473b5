"""A branch's day as demo data, loaded through the services' APIs as its staff would.

Five technicians with their skills and home bays, today's and tomorrow's appointments, and
cars in every state of a visit: received and awaiting an estimate, an estimate awaiting
consent, consented and dispatched, in work, waiting for parts, in QC, ready for delivery
with the invoice printed, delivered and settled; two promises at risk. Times are relative
to now in the branch's zone. It loads only into an empty branch (no customer yet), so a
second `make run` on the same `var/` adds nothing."""

import asyncio
import contextlib
import time as clock
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from services.reception.vin import check_digit
from shared.auth import issue_dev_token

BRANCH = "BR01"
# The order a visit goes through; a car's story stops at its stage.
STAGES = (
    "received",  # intake opened: a draft repair order waits for the estimate
    "estimated",  # the estimate waits for the customer's consent
    "dispatched",  # consented, the jobs assigned to a technician and a bay
    "in_work",  # a technician clocked on
    "waiting_parts",  # paused for a part on order with its ETA
    "qc",  # work finished, the order in QC
    "ready",  # QC passed, washed, settled: the invoice printed, the car awaits its owner
    "delivered",  # handed back and paid
)


@dataclass(frozen=True)
class Technician:
    id: str
    name: str
    bay: str
    skill: str


TECHNICIANS = (
    Technician("tech-wang", "王建国", "B1", "engine"),
    Technician("tech-li", "李明", "B2", "electrical"),
    Technician("tech-zhao", "赵强", "B3", "chassis and brakes"),
    Technician("tech-chen", "陈晓东", "B4", "maintenance (express bay)"),
    Technician("tech-liu", "刘洋", "B5", "air conditioning and body"),
)
STAFF = {
    "advisor": ("adv-sun", "孙丽"),
    "foreman": ("fm-zhou", "周强"),
    "qc": ("qc-ma", "马超"),
    "cashier": ("cash-he", "何静"),
    "manager": ("mgr-guo", "郭峰"),
}
RATE = "380"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def labour(op_code: str, description: str, hours: str, **extra: str) -> dict[str, str]:
    return {
        "kind": "labour",
        "op_code": op_code,
        "description": description,
        "flat_rate_hours": hours,
        "labour_rate": RATE,
        **extra,
    }


def part(op_code: str, part_number: str, description: str, price: str, **extra: str):
    return {
        "kind": "part",
        "op_code": op_code,
        "part_number": part_number,
        "description": description,
        "unit_price": price,
        **extra,
    }


SERVICE_10K = [
    labour("MNT-10K", "1万公里保养 / 10,000 km service", "0.8", job_kind="maintenance"),
    part("MNT-10K", "06L115562B", "机油滤清器 / oil filter", "68"),
    part("MNT-10K", "G052195M4", "机油 5W-30 4L / engine oil", "420"),
]


@dataclass(frozen=True)
class Car:
    name: str
    mobile: str
    channel: str
    language: str
    vin: str
    plate: str
    model: str
    concerns: list[str]
    stage: str
    lines: list[dict[str, str]] = field(default_factory=list)
    technician: str = ""
    booked: bool = False  # arrived for an appointment made for today
    declined: tuple[int, ...] = ()  # lines the customer declined, by index
    promise: str = "today"  # today, tomorrow, or soon (a promise about to be missed)
    part_eta: str = ""  # waiting_parts: the part's number


CARS = (
    Car("王芳", "13800138000", "wechat", "zh-CN", "LSVAU2180N2183294", "沪A12345", "Lavida",
        ["刹车时有异响"], "received", booked=True),
    Car("孙磊", "13611112222", "phone", "zh-CN", "LFV2A21K0N3041877", "沪C55821", "Sagitar",
        ["发动机故障灯亮"], "received"),
    Car("Li Lei", "13912345678", "phone", "en", "LFV2A21K6N3041234", "沪B67890", "Magotan",
        ["Air conditioning smells musty", "Due for 30,000 km service"], "estimated",
        [labour("AC-CLEAN", "空调系统清洗 / A/C clean", "0.5"),
         part("AC-CLEAN", "5Q0820367", "空调滤芯 / cabin filter", "128"),
         labour("MNT-30K", "3万公里保养 / 30,000 km service", "1.5", job_kind="maintenance"),
         part("MNT-30K", "G052195M4", "机油 5W-30 4L / engine oil", "420")]),
    Car("张伟", "13700001111", "sms", "zh-CN", "LBVPH1101NSB00001", "京C24680", "3 Series",
        ["空调不制冷"], "dispatched",
        [labour("AC-GAS", "空调加注冷媒 / A/C recharge", "1.0"),
         part("AC-GAS", "R1234YF", "冷媒 R1234yf / refrigerant", "260")],
        technician="tech-liu", promise="tomorrow"),
    Car("赵敏", "13522223333", "wechat", "zh-CN", "LSVAU2180N2190012", "沪A7K921", "Tiguan L",
        ["怠速抖动"], "in_work",
        [labour("ENG-PLUG", "更换火花塞 / replace spark plugs", "1.0"),
         part("ENG-PLUG", "101905601F", "火花塞 / spark plug", "75", quantity="4")],
        technician="tech-wang"),
    Car("周婷", "13833334444", "phone", "zh-CN", "LFV2A21K4N3052210", "沪D30517", "Bora",
        ["早上启动困难", "仪表盘故障灯亮"], "in_work",
        [labour("ELE-DIAG", "电路诊断及维修 / electrical diagnosis", "2.5")],
        technician="tech-li", promise="soon"),
    Car("陈静", "13944445555", "wechat", "zh-CN", "LSVAU2180N2201456", "沪E88213", "Passat",
        ["过减速带异响"], "waiting_parts",
        [labour("SUS-FRT", "更换前减震器 / replace front shock absorbers", "2.0")],
        technician="tech-zhao", part_eta="5QD413031"),
    Car("杨帆", "13655556666", "sms", "zh-CN", "LBVPH1103NSB00217", "苏E6R553", "5 Series",
        ["刹车片报警"], "qc",
        [labour("BRK-PAD-F", "更换前刹车片 / replace front pads", "1.2"),
         part("BRK-PAD-F", "34116860016", "前刹车片 / front pad set", "680")],
        technician="tech-zhao", booked=True),
    Car("黄磊", "13766667777", "wechat", "zh-CN", "LSVAU2180N2215871", "沪F21907", "Lamando",
        ["一万公里保养"], "ready", SERVICE_10K, technician="tech-chen", booked=True),
    Car("吴昊", "13577778888", "phone", "zh-CN", "LFV2A21K8N3066342", "沪A0L388", "Sagitar",
        ["一万公里保养", "雨刮器刮不干净"], "delivered",
        [*SERVICE_10K,
         labour("WIP-BLADE", "更换雨刮片 / replace wiper blades", "0.2"),
         part("WIP-BLADE", "5GG955427", "雨刮片 / wiper blades", "198")],
        technician="tech-chen", declined=(3, 4)),
    Car("Emma Zhou", "13888889999", "email", "en", "LBVPH1105NSB00380", "沪G90236", "X3",
        ["Check engine light", "Recall notice received"], "delivered",
        [labour("ENG-COIL", "更换点火线圈 / replace ignition coil", "0.6"),
         part("ENG-COIL", "12138657273", "点火线圈 / ignition coil", "890"),
         labour("RCL-ECU", "召回：发动机控制单元升级 / recall: ECU update", "0.5",
                job_kind="recall", pay_type="warranty")],
        technician="tech-wang"),
)  # fmt: skip

# Tomorrow's bookings (local time, hours, concerns) for customers already on file.
TOMORROW = (
    (time(8, 30), "1.0", ["一万公里保养"]),
    (time(9, 30), "2.0", ["刹车异响复查"]),
    (time(10, 30), "1.5", ["更换轮胎"]),
    (time(14, 0), "0.8", ["空调异味"]),
    (time(15, 30), "1.0", ["年检前检查"]),
)
# Later today, while the day still has such hours left.
LATER_TODAY = (
    (time(11, 0), "1.0", ["更换电瓶"]),
    (time(14, 30), "1.5", ["四轮定位"]),
    (time(16, 0), "0.8", ["补胎"]),
)


@dataclass
class Summary:
    """What was loaded: repair-order numbers by stage, and appointment counts."""

    stages: dict[str, list[str]] = field(default_factory=dict)
    appointments: int = 0
    arrived: int = 0


def with_check_digit(vin: str) -> str:
    return vin[:8] + check_digit(vin) + vin[9:]


class Branch:
    """The branch's staff at work: one HTTP client, a token per role, the clock and zone."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: dict[str, str],
        secret: str,
        zone: str,
        code: str = BRANCH,
    ):
        self.client, self.urls, self.zone, self.code = client, urls, ZoneInfo(zone), code
        self.now = datetime.now(UTC)
        self.today = self.now.astimezone(self.zone).date()
        self.tokens = {
            role: issue_dev_token(secret, role=role, branch=code, sub=sub, name=name)
            for role, (sub, name) in STAFF.items()
        }
        for tech in TECHNICIANS:
            self.tokens[tech.id] = issue_dev_token(
                secret, role="technician", branch=code, sub=self.person(tech.id), name=tech.name
            )
        # A technician clocks on one job at a time: stories sharing one take turns.
        self.bench = {tech.id: asyncio.Lock() for tech in TECHNICIANS}
        # (technician, job) on which they stay clocked on at the end.
        self.working: list[tuple[str, str]] = []

    def person(self, technician: str) -> str:
        """The technician's user id: the demo's own in the demo branch, made unique per
        branch elsewhere (bench/group_hour.py loads many branches; a person clocks on one
        job at a time in the whole group)."""
        return technician if self.code == BRANCH else f"{technician}.{self.code.lower()}"

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(UTC)

    def promise(self, kind: str) -> datetime:
        if kind == "soon":  # the advisor has 40 minutes left to call the customer
            return self.now + timedelta(minutes=40)
        if kind == "tomorrow":
            return self.local(self.today + timedelta(days=1), time(12, 0))
        return max(self.local(self.today, time(17, 30)), self.now + timedelta(hours=3))

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        role: str,
        *,
        etag: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if etag:
            headers["If-Match"] = etag
        if method == "POST":
            headers["Idempotency-Key"] = f"demo-{uuid.uuid4()}"
        r = await self.client.request(method, self.urls[service] + path, headers=headers, **kwargs)
        if r.is_error:
            raise RuntimeError(f"demo: {method} {service}{path} → {r.status_code}: {r.text}")
        return r

    async def json(self, method: str, service: str, path: str, role: str, **kwargs: Any) -> Any:
        return (await self.call(method, service, path, role, **kwargs)).json()

    async def open_on(self, day: date) -> bool:
        """Whether the branch takes appointments that day (not in a holiday's break nor on
        its own closing day): on a closed day the demo's cars come in as walk-ins."""
        capacity = await self.json("GET", "reception", f"/capacity/{day}", "advisor")
        return bool(capacity["open"])

    async def etag(self, service: str, path: str) -> str:
        return (await self.call("GET", service, path, "foreman")).headers["ETag"]

    async def repair_order(self, intake_id: str, opened: bool) -> dict[str, Any]:
        """The intake's repair order once workorders has it (opened: with its jobs)."""
        deadline = clock.monotonic() + 30
        while clock.monotonic() < deadline:
            page = await self.json(
                "GET", "workorders", "/repair-orders", "foreman", params={"intake_id": intake_id}
            )
            if page["items"] and (not opened or page["items"][0]["status"] != "draft"):
                order: dict[str, Any] = await self.json(
                    "GET", "workorders", f"/repair-orders/{page['items'][0]['id']}", "foreman"
                )
                return order
            await asyncio.sleep(0.05)
        raise RuntimeError(f"demo: no repair order for intake {intake_id} within 30 s")

    async def move(self, order_id: str, to: str) -> None:
        path = f"/repair-orders/{order_id}"
        etag = await self.etag("workorders", path)
        await self.call("POST", "workorders", f"{path}/transitions", "foreman", etag=etag,
                        json={"to": to})  # fmt: skip

    async def clock(self, tech: str, job_id: str, reason: str | None) -> None:
        """Clock on the job; with a reason, clock off it again for that reason."""
        await self.call("POST", "workorders", f"/jobs/{job_id}/clock-on", tech)
        if reason:
            await self.call("POST", "workorders", f"/jobs/{job_id}/clock-off", tech,
                            json={"reason": reason})  # fmt: skip


async def register(branch: Branch, car: Car) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = await branch.json(
        "POST",
        "reception",
        "/customers",
        "advisor",
        json={
            "name": car.name,
            "mobile": car.mobile,
            "preferred_channel": car.channel,
            "language": car.language,
            "contact_consent": True,
        },
    )
    vehicle = await branch.json(
        "POST",
        "reception",
        "/vehicles",
        "advisor",
        json={
            "customer_id": customer["id"],
            "vin": with_check_digit(car.vin),
            "plate": car.plate,
            "model": car.model,
        },
    )
    return customer, vehicle


async def visit(branch: Branch, car: Car, vehicle: dict[str, Any], summary: Summary) -> None:
    """One car's visit, told up to its stage."""
    stage = STAGES.index(car.stage)
    intake_body: dict[str, Any] = {
        "vehicle_id": vehicle["id"],
        "odometer_km": 8000 + int(car.mobile[-4:]) * 7,
        "concerns": car.concerns,
    }
    if car.booked and await branch.open_on(branch.today):  # booked; came in as due
        appointment = await branch.json(
            "POST", "reception", "/appointments", "advisor",
            json={"vehicle_id": vehicle["id"], "starts_at": _iso(branch.now + timedelta(minutes=2)),
                  "planned_hours": "1.0", "concerns": car.concerns},
        )  # fmt: skip
        intake_body["appointment_id"] = appointment["id"]
        summary.appointments += 1
        summary.arrived += 1
    intake = await branch.json("POST", "reception", "/intakes", "advisor", json=intake_body)
    if stage == STAGES.index("received"):
        order = await branch.repair_order(intake["id"], opened=False)
        summary.stages.setdefault(car.stage, []).append(order["number"])
        return
    promised_at = branch.promise(car.promise)
    estimate = await branch.call(
        "POST", "reception", "/estimates", "advisor",
        json={"intake_id": intake["id"], "promised_at": _iso(promised_at), "lines": car.lines},
    )  # fmt: skip
    if stage == STAGES.index("estimated"):
        order = await branch.repair_order(intake["id"], opened=False)
        summary.stages.setdefault(car.stage, []).append(order["number"])
        return
    lines = estimate.json()["lines"]
    await branch.call(
        "POST", "reception", f"/estimates/{estimate.json()['id']}/consents", "advisor",
        etag=estimate.headers["ETag"],
        json={
            "decisions": [
                {"line_id": line["line_id"],
                 "decision": "declined" if i in car.declined else "approved"}
                for i, line in enumerate(lines)
            ],
            "by": car.name,
            "channel": "phone",
            "call_note": "电话确认报价 / quote agreed by phone",
        },
    )  # fmt: skip
    order = await branch.repair_order(intake["id"], opened=True)
    await dispatch(branch, car, order)
    if stage > STAGES.index("dispatched"):
        await work(branch, car, order)
    summary.stages.setdefault(car.stage, []).append(order["number"])


async def dispatch(branch: Branch, car: Car, order: dict[str, Any]) -> None:
    tech = next(t for t in TECHNICIANS if t.id == car.technician)
    start = (
        branch.now if car.stage != "dispatched" else branch.promise("today") - timedelta(hours=2)
    )
    for job in order["jobs"]:
        path = f"/jobs/{job['id']}"
        etag = await branch.etag("workorders", path)
        await branch.call(
            "PUT", "workorders", f"{path}/assignment", "foreman", etag=etag,
            json={"technician_id": branch.person(tech.id), "bay": tech.bay,
                  "planned_start_at": _iso(start)},
        )  # fmt: skip


async def work(branch: Branch, car: Car, order: dict[str, Any]) -> None:
    jobs = [job["id"] for job in order["jobs"]]
    tech = car.technician
    if car.stage == "in_work":  # clocked on once the technician's other jobs are done
        branch.working.append((tech, jobs[0]))
        return
    async with branch.bench[tech]:
        if car.stage == "waiting_parts":
            await branch.clock(tech, jobs[0], None)
            requested = await branch.call(
                "POST", "workorders", f"/jobs/{jobs[0]}/parts", tech,
                json={"part_number": car.part_eta, "quantity": "2",
                      "description": "前减震器 / front shock absorber"},
            )  # fmt: skip
            # Ordered from the regional warehouse: here tomorrow morning, after the promise.
            eta = branch.local(branch.today + timedelta(days=1), time(10, 0))
            eta = max(eta, branch.promise(car.promise) + timedelta(hours=2))
            await branch.call(
                "POST", "workorders", f"/parts/{requested.json()['id']}/transitions", "foreman",
                etag=requested.headers["ETag"], json={"to": "ordered", "eta_at": _iso(eta)},
            )  # fmt: skip
            await branch.call(
                "POST", "workorders", f"/jobs/{jobs[0]}/clock-off", tech,
                json={"reason": "waiting_parts"},
            )  # fmt: skip
            return
        for job_id in jobs:
            await branch.clock(tech, job_id, "finished")
    await branch.move(order["id"], "qc")
    if car.stage == "qc":
        return
    for job_id in jobs:
        await branch.call(
            "POST", "workorders", f"/jobs/{job_id}/qc", "qc",
            json={"passed": True, "road_test": True,
                  "checklist": [{"item": "作业项目完成 / work done", "ok": True},
                                {"item": "无漏油、无异响 / no leaks, no noise", "ok": True}]},
        )  # fmt: skip
    await branch.move(order["id"], "washing")
    await branch.move(order["id"], "ready")
    path = f"/repair-orders/{order['id']}"
    preview = await branch.call("GET", "workorders", f"{path}/invoice-preview", "cashier")
    due = preview.json()["customer_due"]
    settled = await branch.call(
        "POST", "workorders", f"{path}/settlement", "cashier", etag=preview.headers["ETag"],
        json={"payments": [{"method": "wechat", "amount": due}] if due != "0.00" else []},
    )  # fmt: skip
    await branch.call("POST", "workorders", f"{path}/invoice/prints", "cashier")
    if car.stage == "ready":
        return
    await branch.call(
        "POST", "workorders", f"{path}/delivery", "advisor", etag=settled.headers["ETag"],
        json={"charges_explained": True, "old_parts_offered": True, "keys_returned": True,
              "declined_work_told": True},
    )  # fmt: skip


async def book_ahead(branch: Branch, vehicles: list[dict[str, Any]], summary: Summary) -> None:
    """Later today's and tomorrow's bookings, for customers already on file."""
    tomorrow = branch.today + timedelta(days=1)
    slots = [
        (branch.local(branch.today, at), hours, concerns)
        for at, hours, concerns in LATER_TODAY
        if branch.local(branch.today, at) > branch.now + timedelta(minutes=10)
    ] + [(branch.local(tomorrow, at), hours, concerns) for at, hours, concerns in TOMORROW]
    open_days = {day for day in (branch.today, tomorrow) if await branch.open_on(day)}
    slots = [slot for slot in slots if slot[0].astimezone(branch.zone).date() in open_days]
    for (starts_at, hours, concerns), vehicle in zip(slots, vehicles, strict=False):
        await branch.call(
            "POST", "reception", "/appointments", "advisor",
            json={"vehicle_id": vehicle["id"], "starts_at": _iso(starts_at),
                  "planned_hours": hours, "concerns": concerns},
        )  # fmt: skip
        summary.appointments += 1


async def roster(branch: Branch, zone: str) -> None:
    """The branch's record and its five technicians (open every day, so the demo's
    dispatch works whatever day it runs), then waits until workorders has the roster."""
    hours = {d: {"start": "08:00", "end": "18:00"} for d in WEEKDAYS}
    await branch.call(
        "PUT", "reception", f"/branches/{branch.code}", "manager",
        json={"name": "浦东服务中心 Pudong Service Centre",
              "address": "上海市浦东新区张江路 100 号",
              "time_zone": zone, "business_hours": hours, "tax_rate": "0.13",
              "daily_bays": len(TECHNICIANS), "daily_technician_hours": str(8 * len(TECHNICIANS)),
              "follow_up_day": 3,
              "targets": {"on_time_delivery": "0.95", "major_complaint_rate": "0.01"}},
    )  # fmt: skip
    for tech in TECHNICIANS:
        person = branch.person(tech.id)
        await branch.call(
            "PUT", "reception", f"/branches/{branch.code}/staff/{person}", "manager",
            json={"name": tech.name, "roles": ["technician"], "skills": [tech.skill],
                  "bay": tech.bay, "working_hours": hours},
        )  # fmt: skip
    deadline = clock.monotonic() + 30
    while clock.monotonic() < deadline:
        page = await branch.json("GET", "workorders", "/technicians/working", "foreman",
                                 params={"on": branch.today.isoformat()})  # fmt: skip
        if len(page["items"]) == len(TECHNICIANS):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("demo: workorders did not get the roster within 30 s")


async def load_async(
    urls: dict[str, str],
    secret: str,
    zone: str,
    *,
    code: str = BRANCH,
    client: httpx.AsyncClient | None = None,
) -> Summary | None:
    """Load the branch's day; None when the branch already has customers (nothing done).
    `code` names the branch; `client` is the caller's (bench/group_hour.py times it)."""
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        branch = Branch(client, urls, secret, zone, code)
        existing = await branch.json("GET", "reception", "/customers", "advisor",
                                     params={"limit": 1})  # fmt: skip
        if existing["items"]:
            return None
        await roster(branch, zone)
        for day in (branch.today, branch.today + timedelta(days=1)):
            await branch.call(
                "PUT", "reception", f"/capacity/{day.isoformat()}", "manager",
                json={"bays": len(TECHNICIANS), "technician_hours": str(8 * len(TECHNICIANS))},
            )  # fmt: skip
        registered = await asyncio.gather(*(register(branch, car) for car in CARS))
        summary = Summary()
        vehicles = [vehicle for _, vehicle in registered]
        await asyncio.gather(
            *(
                visit(branch, car, vehicle, summary)
                for car, vehicle in zip(CARS, vehicles, strict=True)
            ),
            book_ahead(branch, vehicles[::-1], summary),
        )
        for tech, job_id in branch.working:
            await branch.clock(tech, job_id, None)
        return summary
    return None  # unreachable: the block above returns


def load(urls: dict[str, str], secret: str, zone: str = "Asia/Shanghai") -> Summary | None:
    """`load_async` for a caller without an event loop (`make run`)."""
    return asyncio.run(load_async(urls, secret, zone))


def _iso(at: datetime) -> str:
    return at.isoformat()


def describe(summary: Summary | None) -> str:
    """One line for `make run`."""
    if summary is None:
        return "Demo data: the branch already has customers; nothing loaded."
    stages = ", ".join(f"{stage} {len(summary.stages.get(stage, []))}" for stage in STAGES)
    return (
        f"Demo data loaded: {len(CARS)} cars ({stages}), {len(TECHNICIANS)} technicians, "
        f"{summary.appointments} appointments ({summary.arrived} arrived)."
    )
