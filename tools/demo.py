"""A small demo data set, loaded once through reception's API like an advisor would."""

import httpx

from services.reception.vin import check_digit

CUSTOMERS = [
    ("王芳", "13800138000", "wechat", "zh-CN", "LSVAU2180N2183294", "沪A12345", ["刹车时有异响"]),
    (
        "Li Lei",
        "13912345678",
        "phone",
        "en",
        "LFV2A21K6N3041234",
        "沪B67890",
        ["Air conditioning smells musty", "Due for 30,000 km service"],
    ),
    ("张伟", "13700001111", "sms", "zh-CN", "LBVPH1101NSB00001", "京C24680", ["仪表盘故障灯亮"]),
]


def with_check_digit(vin: str) -> str:
    return vin[:8] + check_digit(vin) + vin[9:]


def load(reception_url: str, headers: dict[str, str]) -> list[str]:
    """Register the demo customers and vehicles and open one intake each; returns intake ids."""
    intakes = []
    with httpx.Client(base_url=reception_url, headers=headers, timeout=10) as client:
        for name, mobile, channel, language, vin, plate, concerns in CUSTOMERS:
            customer = (
                client.post(
                    "/customers",
                    json={
                        "name": name,
                        "mobile": mobile,
                        "preferred_channel": channel,
                        "language": language,
                    },
                )
                .raise_for_status()
                .json()
            )
            vehicle = (
                client.post(
                    "/vehicles",
                    json={
                        "customer_id": customer["id"],
                        "vin": with_check_digit(vin),
                        "plate": plate,
                    },
                )
                .raise_for_status()
                .json()
            )
            intake = (
                client.post(
                    "/intakes",
                    json={"vehicle_id": vehicle["id"], "odometer_km": 30000, "concerns": concerns},
                )
                .raise_for_status()
                .json()
            )
            intakes.append(intake["id"])
    return intakes
