"""Validate every Kubernetes manifest under deploy/k8s offline (`make manifests`).

Built-in kinds go through kubernetes-validate in strict mode (unknown fields are errors) against
each Kubernetes version in VERSIONS: the oldest we support and the newest the package knows.
Custom resources have no schema in that package, and kubernetes-validate only warns about them;
here a custom kind must have a schema in deploy/schemas/ (`ServiceMonitor`: a strict subset we
wrote from the Prometheus Operator's API reference), and a kind with neither is an error, so
nothing is skipped in silence.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parent
MANIFESTS = DEPLOY / "k8s"
# matchLabelKeys in topology spread constraints is GA since 1.27 (beta, on by default, in 1.27).
VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
CUSTOM_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): DEPLOY
    / "schemas"
    / "servicemonitor-monitoring-v1.json",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def house_rules(resource: dict[str, Any]) -> list[str]:
    """What every pod of ours must be: non-root, read-only root filesystem, no privilege
    escalation, no capabilities, a memory limit; and the API's probes on /healthz and /readyz."""
    if resource.get("kind") not in ("Deployment", "Job"):
        return []
    pod = resource["spec"]["template"]["spec"]
    broken = []
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        broken.append("the pod must set securityContext.runAsNonRoot: true")
    if pod.get("automountServiceAccountToken") is not False:
        broken.append("the pod must not mount a service account token")
    for container in pod["containers"]:
        security = container.get("securityContext", {})
        who = f"container {container['name']}"
        if security.get("readOnlyRootFilesystem") is not True:
            broken.append(f"{who}: readOnlyRootFilesystem must be true")
        if security.get("allowPrivilegeEscalation") is not False:
            broken.append(f"{who}: allowPrivilegeEscalation must be false")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            broken.append(f"{who}: capabilities must drop ALL")
        if "memory" not in container.get("resources", {}).get("limits", {}):
            broken.append(f"{who}: needs a memory limit")
        mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
        if "/tmp" not in mounts:  # noqa: S108 (the emptyDir, not a shared /tmp)
            broken.append(f"{who}: needs a writable emptyDir at /tmp")
        if "serve" in container.get("args", []):
            probes = {
                probe: container.get(probe, {}).get("httpGet", {}).get("path")
                for probe in ("livenessProbe", "readinessProbe")
            }
            if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
                broken.append(f"{who}: probes must be /healthz (liveness) and /readyz (readiness)")
    return broken


def validate(path: Path, resource: dict[str, Any]) -> list[str]:
    metadata = resource.get("metadata", {})
    name = f"{path.relative_to(DEPLOY)}: {resource.get('kind')}/{metadata.get('name')}"
    key = (resource.get("apiVersion"), resource.get("kind"))
    if key in CUSTOM_SCHEMAS:
        schema = json.loads(CUSTOM_SCHEMAS[key].read_text())
        validator = jsonschema.Draft202012Validator(schema)
        errors = [
            f"{name}: {'.'.join(map(str, error.path))}: {error.message}"
            for error in validator.iter_errors(resource)
        ]
        if not errors:
            print(f"ok {name} (schema {CUSTOM_SCHEMAS[key].relative_to(DEPLOY)})")
        return errors
    problems = [f"{name}: {rule}" for rule in house_rules(resource)]
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(map(str, error.path))
            problems.append(f"{name} (Kubernetes {version}): {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name}: no schema: {error.message}")
    if not problems:
        print(f"ok {name} (Kubernetes {', '.join(VERSIONS)})")
    return problems


def main() -> int:
    paths = sorted(MANIFESTS.rglob("*.yaml"))
    if not paths:
        print(f"no manifests under {MANIFESTS}")
        return 1
    problems = []
    for path in paths:
        for resource in documents(path):
            problems += validate(path, resource)
    for problem in problems:
        print(f"ERROR {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
