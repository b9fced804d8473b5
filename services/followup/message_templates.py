"""What each customer message says: e-mail subject and text in zh-CN and English, and
the order of an SMS template's parameters (the SMS text itself is the template the
provider approved; Alibaba takes named parameters, Tencent a list in this order)."""

from collections.abc import Mapping

# template → language → (subject, body)
EMAIL: dict[str, dict[str, tuple[str, str]]] = {
    "car_ready": {
        "zh-CN": (
            "您的爱车已可取车",
            "您好,您的爱车 {plate} 已完工,可以取车。\n工单号:{number}\n应付金额:{amount} 元",
        ),
        "en": (
            "Your car is ready",
            "Hello, your car {plate} is ready for collection.\n"
            "Repair order: {number}\nAmount due: {currency} {amount}",
        ),
    },
    "promise_changed": {
        "zh-CN": (
            "交车时间调整",
            "您好,您的爱车 {plate}(工单 {number})预计交车时间调整为 {promised}。"
            "给您带来不便,敬请谅解。",
        ),
        "en": (
            "New time for your car",
            "Hello, your car {plate} (repair order {number}) will now be ready at "
            "{promised}. We are sorry for the delay.",
        ),
    },
    "appointment_reminder": {
        "zh-CN": ("预约提醒", "您好,提醒您明天 {time} 到店保养维修。如需改期,请致电我们。"),
        "en": (
            "Your appointment tomorrow",
            "Hello, a reminder of your service appointment tomorrow at {time}. "
            "Please call us to change it.",
        ),
    },
}

# template → the parameters in the order of the provider's template ({1}, {2}, ...).
SMS_PARAM_ORDER: dict[str, tuple[str, ...]] = {
    "car_ready": ("plate", "amount", "number"),
    "promise_changed": ("plate", "promised", "number"),
    "appointment_reminder": ("time",),
}


def email_text(template: str, language: str, params: Mapping[str, str]) -> tuple[str, str]:
    """Subject and body of an e-mail; English where the customer's language has no text."""
    texts = EMAIL[template]
    subject, body = texts.get(language) or texts["en"]
    return subject, body.format_map(_Blank({k: str(v) for k, v in params.items()}))


class _Blank(dict[str, str]):
    """A parameter the message was queued without reads as nothing, never a crash."""

    def __missing__(self, key: str) -> str:
        return ""


def sms_params(template: str, params: Mapping[str, str]) -> list[str]:
    """A Tencent template's parameters, in the template's order."""
    return [str(params.get(name, "")) for name in SMS_PARAM_ORDER[template]]
