"""Cross-references in rendered Kubernetes manifests that schemas cannot see.

`python -m tools.k8s_refs SECRETS_TEMPLATE RENDERED.yaml...` (deploy/check.sh runs it on
each overlay kubectl rendered): the template's values are all empty, every Secret and key
a pod reads is in the template, every ConfigMap it mounts is rendered, every selector
(Service, PodDisruptionBudget, NetworkPolicy) picks some pod, and every name an
autoscaler, an Ingress or a StatefulSet gives exists. Exit 1 with one line per problem."""

import sys
from collections.abc import Iterator
from typing import Any

import yaml

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def load(path: str) -> list[dict[str, Any]]:
    with open(path) as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes' label selector: matchLabels and matchExpressions (In, NotIn, Exists)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def problems(secrets: dict[str, set[str]], objects: list[dict[str, Any]]) -> Iterator[str]:
    named = {(o["kind"], o["metadata"]["name"]) for o in objects}
    pods = list(pod_specs(objects))
    labels = [template["metadata"].get("labels") or {} for _, template in pods]

    def picks(selector: dict[str, Any]) -> bool:
        return any(selects(selector, pod) for pod in labels)

    for where, template in pods:
        spec = template["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["key"] not in secrets.get(ref["name"], set()):
                    yield f"{where}: Secret {ref['name']} key {ref['key']} not in the template"
            for source in container.get("envFrom", []):
                ref = source.get("secretRef")
                if ref and ref["name"] not in secrets:
                    yield f"{where}: Secret {ref['name']} not in the template"
        for volume in spec.get("volumes", []):
            config_map = volume.get("configMap")
            if config_map and ("ConfigMap", config_map["name"]) not in named:
                yield f"{where}: ConfigMap {config_map['name']} not rendered"
    for obj in objects:
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj.get("spec") or {}
        where = f"{kind}/{name}"
        if kind == "Service" and not picks({"matchLabels": spec.get("selector") or {}}):
            yield f"{where}: selector picks no pod"
        if kind == "PodDisruptionBudget" and not picks(spec["selector"]):
            yield f"{where}: selector picks no pod"
        if kind == "NetworkPolicy":
            if spec["podSelector"] and not picks(spec["podSelector"]):
                yield f"{where}: podSelector picks no pod"
            for rule in spec.get("ingress", []) + spec.get("egress", []):
                for peer in rule.get("from", []) + rule.get("to", []):
                    inside = "podSelector" in peer and "namespaceSelector" not in peer
                    if inside and not picks(peer["podSelector"]):
                        yield f"{where}: a peer's podSelector picks no pod"
        if kind == "HorizontalPodAutoscaler":
            target = spec["scaleTargetRef"]
            if (target["kind"], target["name"]) not in named:
                yield f"{where}: no {target['kind']} {target['name']}"
        if kind == "StatefulSet" and ("Service", spec["serviceName"]) not in named:
            yield f"{where}: no Service {spec['serviceName']}"
        if kind == "Ingress":
            for rule in spec.get("rules", []):
                for path in rule["http"]["paths"]:
                    service = path["backend"]["service"]["name"]
                    if ("Service", service) not in named:
                        yield f"{where}: no Service {service}"


def filled_in(template: list[dict[str, Any]]) -> list[str]:
    """Secret values a template must not carry: every one of them, as `name/key`."""
    return [
        f"{secret['metadata']['name']}/{key}"
        for secret in template
        for field in ("stringData", "data")
        for key, value in (secret.get(field) or {}).items()
        if value
    ]


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python -m tools.k8s_refs SECRETS_TEMPLATE RENDERED.yaml...")
    template = [doc for doc in load(sys.argv[1]) if doc["kind"] == "Secret"]
    secrets = {
        doc["metadata"]["name"]: set((doc.get("stringData") or {}) | (doc.get("data") or {}))
        for doc in template
    }
    failed = False
    for value in filled_in(template):
        print(
            f"{sys.argv[1]}: {value} is filled in; the template keeps values empty", file=sys.stderr
        )
        failed = True
    for path in sys.argv[2:]:
        for problem in problems(secrets, load(path)):
            print(f"{path}: {problem}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
