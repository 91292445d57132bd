"""The contract (接口契约) ``docs/api/openapi.yaml`` loaded once: operations and JSON Schemas.

Both the client (to validate replies) and the simulator (to validate requests, and to know which
operations are mutating) read the same file, so neither can drift from it unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.yaml"


@dataclass(frozen=True)
class Operation:
    """One operation of the contract."""

    operation_id: str
    method: str
    path: str  # relative to the server's base URL, e.g. "/applications"
    mutating: bool  # needs an Idempotency-Key; never retried blindly
    request_schema: str | None  # component name, or None (no body)
    response_schema: str | None


class Contract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._validators: dict[str, Draft202012Validator] = {}
        self.operations: dict[str, Operation] = {}
        for path, methods in spec["paths"].items():
            for method, op in methods.items():
                self.operations[op["operationId"]] = Operation(
                    operation_id=op["operationId"],
                    method=method.upper(),
                    path=path,
                    mutating=bool(op.get("x-mutating", False)),
                    request_schema=self._body_schema(op.get("requestBody")),
                    response_schema=self._ok_schema(op),
                )
        self.by_route = {(o.method, o.path): o for o in self.operations.values()}
        self.error_codes: tuple[str, ...] = tuple(spec["components"]["schemas"]["ErrorCode"]["enum"])

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            target: Any = self.spec
            for part in parts:
                target = target[part]
            node = target
        return node

    def _body_schema(self, body: dict[str, Any] | None) -> str | None:
        if body is None:
            return None
        schema = self._resolve(body)["content"]["application/json"]["schema"]
        return schema["$ref"].rsplit("/", 1)[-1]

    def _ok_schema(self, op: dict[str, Any]) -> str | None:
        ok = op["responses"].get("200")
        if ok is None:
            return None
        return ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    def validator(self, component: str) -> Draft202012Validator:
        found = self._validators.get(component)
        if found is None:
            if component not in self.spec["components"]["schemas"]:
                raise KeyError(f"no schema {component!r} in the contract")
            schema = {"$ref": f"#/components/schemas/{component}", "components": self.spec["components"]}
            found = Draft202012Validator(schema)
            self._validators[component] = found
        return found

    def errors(self, component: str, instance: Any) -> list[str]:
        """Schema violations of ``instance`` (empty when it conforms); paths only, no values."""
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.validator}"
            for e in self.validator(component).iter_errors(instance)
        ]


@lru_cache(maxsize=4)
def load_contract(path: Path = DEFAULT_SPEC) -> Contract:
    with Path(path).open(encoding="utf-8") as f:
        return Contract(yaml.safe_load(f))
