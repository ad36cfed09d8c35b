"""The committed OpenAPI document tells tools the truth about error answers and parameters."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from wg_api.platform.pagination import CursorCipher
from wg_api.settings import PROJECT_ROOT

DOCUMENT = json.loads((PROJECT_ROOT / "openapi" / "openapi.json").read_text())
METHODS = ("get", "put", "post", "patch", "delete")
PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in DOCUMENT["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_every_error_answer_is_problem_details():
    wrong = []
    for path, method, operation in operations():
        for status, answer in operation["responses"].items():
            if status[0] not in "45":
                continue
            content = answer.get("content", {})
            if path == "/oauth/token" and "application/json" in content:
                continue  # RFC 6749 errors; checked below
            if content != {"application/problem+json": PROBLEM}:
                wrong.append(f"{method.upper()} {path} {status}: {sorted(content)}")
    assert wrong == []
    assert "Validation Exception" not in json.dumps(DOCUMENT)


def test_the_token_endpoint_documents_oauth_errors_and_its_form():
    operation = DOCUMENT["paths"]["/oauth/token"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "429", "503"}
    oauth_error = {"schema": {"$ref": "#/components/schemas/OAuthError"}}
    assert operation["responses"]["401"]["content"]["application/json"] == oauth_error
    assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]


def test_statuses_follow_from_what_the_route_declares():
    missing = []
    for path, method, operation in operations():
        if not path.startswith("/v1/"):
            continue
        expected = {"400", "401", "429", "503"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415", "422"}
        if method != "get":
            expected |= {"409", "422"}
        if [s for s in operation.get("security", []) if any(s.values())]:
            expected.add("403")
        if lacking := expected - set(operation["responses"]):
            missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
    assert missing == []


def test_if_match_operations_document_412():
    for path, method in [("/v1/findings/{finding_id}", "patch"), ("/v1/tenant", "patch")]:
        assert "412" in DOCUMENT["paths"][path][method]["responses"], (method, path)


def test_cursor_parameters_declare_what_the_service_issues():
    cipher = CursorCipher([os.urandom(32)])
    issued = [
        cipher.seal([], "page:x"),
        cipher.seal(["2026-01-01", "00000000-0000-4000-8000-000000000000"], "page:x"),
        cipher.seal([10**6, 1767225600.123], "events:x"),
    ]
    found = 0
    for _path, _method, operation in operations():
        for parameter in operation.get("parameters", []):
            if parameter["name"] not in ("cursor", "after"):
                continue
            found += 1
            schema = parameter["schema"]
            assert schema["type"] == "string"
            for cursor in issued:
                assert re.match(schema["pattern"], cursor), cursor
                assert len(cursor) <= schema["maxLength"]
            # Empty is the first page (found by schemathesis: `?cursor=` answered 200 while
            # the document refused it); a shorter token is nothing the service issued.
            assert re.match(schema["pattern"], "")
            assert not re.match(schema["pattern"], issued[0][:39])
    assert found >= 15, found


def test_query_parameters_are_never_json_null():
    nullable = []
    for path, method, operation in operations():
        for parameter in operation.get("parameters", []):
            text = json.dumps(parameter["schema"])
            if '"null"' in text or "null]" in text:
                nullable.append(f"{method.upper()} {path} {parameter['name']}")
    assert nullable == []


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "components": DOCUMENT["components"]}


def test_a_supplier_answer_is_not_valid_under_two_exclusive_branches():
    answer = DOCUMENT["paths"]["/v1/suppliers/{supplier_id}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert "oneOf" not in schema
    mine = {
        "id": "00000000-0000-4000-8000-000000000000",
        "name": "Kestrel Bay Garment",
        "local_name": None,
        "address": "No. 18 Industrial Rd.",
        "country": "CN",
        "province": None,
        "city": None,
        "sector": None,
        "os_id": None,
        "internal_code": "V-1",
        "linked_at": "2026-01-01T00:00:00Z",
    }
    not_mine = {k: v for k, v in mine.items() if k not in ("internal_code", "linked_at")}
    validator = jsonschema.Draft202012Validator(_resolve(schema))
    for body in (mine, not_mine):
        assert validator.is_valid(body), list(validator.iter_errors(body))


@pytest.mark.parametrize("name", ["FindingIn", "WorkingGroupIn", "SupplierIn"])
def test_request_bodies_refuse_other_properties_as_the_service_does(name):
    assert DOCUMENT["components"]["schemas"][name]["additionalProperties"] is False


def test_free_text_declares_that_it_holds_no_nul():
    title = DOCUMENT["components"]["schemas"]["FindingIn"]["properties"]["title"]
    assert "\\u0000" in json.dumps(title)
    q = next(
        p
        for p in DOCUMENT["paths"]["/v1/supplier-registry"]["get"]["parameters"]
        if p["name"] == "q"
    )
    assert re.match(q["schema"]["pattern"], "a\x00b") is None
    assert re.match(q["schema"]["pattern"], "sunrise 明光") is not None
