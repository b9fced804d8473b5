"""The Kubernetes cross-reference check (tools/k8s_refs.py) finds what schemas cannot."""

from typing import Any

from tools.k8s_refs import filled_in, problems, selects

SECRETS = {"workshop-jwt": {"secret"}}


def deployment(labels: dict[str, str], secret_key: str = "secret") -> dict[str, Any]:
    ref = {"secretKeyRef": {"name": "workshop-jwt", "key": secret_key}}
    env = [{"name": "RECEPTION_JWT_SECRET", "valueFrom": ref}]
    return {
        "kind": "Deployment",
        "metadata": {"name": "reception"},
        "spec": {
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "reception", "env": env}]},
            }
        },
    }


def service(selector: dict[str, str]) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": "reception"}, "spec": {"selector": selector}}


def test_selectors_follow_kubernetes_rules() -> None:
    pod = {"app": "reception", "tier": "api"}
    assert selects({"matchLabels": {"app": "reception"}}, pod)
    assert not selects({"matchLabels": {"app": "records"}}, pod)
    expr = {"key": "app", "operator": "In", "values": ["reception", "records"]}
    assert selects({"matchExpressions": [expr]}, pod)
    assert not selects({"matchExpressions": [{**expr, "operator": "NotIn"}]}, pod)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, pod)
    assert selects({}, pod)


def test_consistent_manifests_pass() -> None:
    objects = [deployment({"app": "reception"}), service({"app": "reception"})]
    assert list(problems(SECRETS, objects)) == []


def test_a_missing_secret_key_and_a_selector_without_pods_are_named() -> None:
    objects = [deployment({"app": "reception"}, secret_key="key"), service({"app": "recepton"})]
    assert list(problems(SECRETS, objects)) == [
        "Deployment/reception: Secret workshop-jwt key key not in the template",
        "Service/reception: selector picks no pod",
    ]


def test_a_filled_in_secret_value_is_named() -> None:
    template = [
        {"metadata": {"name": "workshop-jwt"}, "stringData": {"secret": ""}},
        {"metadata": {"name": "records-webhook"}, "data": {"secrets-key": "c2VjcmV0"}},
    ]
    assert filled_in(template) == ["records-webhook/secrets-key"]
