"""A small kustomize, for rendering k8s/ where neither kustomize nor kubectl is installed.

It implements exactly the features k8s/ uses and refuses any other kustomization field, so a
new feature cannot be silently ignored: `resources` (files and directories), `namespace`,
`images` and `patches` given by `path` (strategic merge: maps merge, lists of named items merge
by name in built-in kinds, other lists are replaced as in a JSON merge patch, `$patch: delete`
removes the resource). tests/deploy/test_k8s.py checks it against `kubectl kustomize` when
kubectl is present.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class KustomizeError(ValueError):
    pass


def build(directory: Path) -> list[Resource]:
    path = directory / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise KustomizeError(f"{path}: this renderer does not support {sorted(unsupported)}")

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(build(target))
        else:
            resources.extend(load_documents(target))

    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise KustomizeError(f"{path}: only `path` patches are supported: {entry}")
        for patch in load_documents(directory / entry["path"]):
            resources = apply_patch(resources, patch)

    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]

    for image in kustomization.get("images", []):
        for resource in resources:
            for container in containers(resource):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    new_tag = str(image.get("newTag", tag))
                    new_name = image.get("newName", name)
                    container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
    return resources


def load_documents(path: Path) -> list[Resource]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def containers(resource: Resource) -> list[dict[str, Any]]:
    spec = resource.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return pod.get("containers", []) + pod.get("initContainers", [])


def group(resource: Resource) -> str:
    api_version = resource["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


def apply_patch(resources: list[Resource], patch: Resource) -> list[Resource]:
    def matches(resource: Resource) -> bool:
        metadata = patch["metadata"]
        return (
            resource["kind"] == patch["kind"]
            and group(resource) == group(patch)
            and resource["metadata"]["name"] == metadata["name"]
            and metadata.get("namespace", resource["metadata"].get("namespace"))
            == resource["metadata"].get("namespace")
        )

    matched = [resource for resource in resources if matches(resource)]
    if len(matched) != 1:
        raise KustomizeError(f"patch {patch['kind']}/{patch['metadata']['name']} matches {matched}")
    if patch.get("$patch") == "delete":
        return [resource for resource in resources if resource is not matched[0]]
    body = {key: value for key, value in patch.items() if key not in ("apiVersion", "kind")}
    merged = merge(matched[0], body, builtin=group(patch) in BUILTIN_GROUPS)
    return [merged if resource is matched[0] else resource for resource in resources]


def merge(base: Any, patch: Any, builtin: bool) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        result = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = merge(result[key], value, builtin)
            else:
                result[key] = copy.deepcopy(value)
        return result
    if builtin and isinstance(base, list) and isinstance(patch, list) and _named(base + patch):
        result = copy.deepcopy(base)
        for item in patch:
            names = [existing["name"] for existing in result]
            if item["name"] in names:
                index = names.index(item["name"])
                result[index] = merge(result[index], item, builtin)
            else:
                result.append(copy.deepcopy(item))
        return result
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)
