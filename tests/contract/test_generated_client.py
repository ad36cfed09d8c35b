"""Integrators start from a generated client: `openapi-python-client` makes one from
`openapi/openapi.json` without a single warning, and it works against the service."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from wg_api.settings import PROJECT_ROOT

GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
PACKAGE = "wg_api_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    if GENERATOR is None:
        pytest.skip("openapi-python-client is not installed (uv sync installs the dev group)")
    root = tmp_path_factory.mktemp("client")
    # No post-generation hooks (they would reformat the code with ruff): the client as made.
    config = root / "config.yml"
    # The import's NDJSON and CSV bodies are bytes to a generated client: the generator's own
    # setting for media types it does not model (README: Generated clients).
    config.write_text(
        "post_hooks: []\n"
        "content_type_overrides:\n"
        "  application/x-ndjson: application/octet-stream\n"
        "  text/csv: application/octet-stream\n"
    )
    done = subprocess.run(
        [
            GENERATOR,
            "generate",
            "--path",
            str(PROJECT_ROOT / "openapi" / "openapi.json"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture
async def api_client(generated: ModuleType, client: httpx.AsyncClient, make_tenant: Any) -> Any:
    tenant = await make_tenant()
    # The service as the other tests reach it (in-process, over its ASGI interface).
    return generated.AuthenticatedClient(
        base_url=str(client.base_url),
        token=await tenant.token(),
        httpx_args={"transport": client._transport},
        raise_on_unexpected_status=True,
    )


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_list(api_client):
    list_tenants = _module("api.identity.v1_tenants_directory")
    response = await list_tenants.asyncio_detailed(client=api_client, limit=2)
    assert response.status_code == 200
    page = response.parsed
    assert type(page).__module__.startswith(f"{PACKAGE}.models")
    assert len(page.items) <= 2
    assert all(item.slug for item in page.items)


async def test_a_create(api_client):
    create = _module("api.working_groups.v1_working_groups_create")
    models = _module("models")
    name = f"Generated client {uuid.uuid4().hex[:6]}"
    group = await create.asyncio(client=api_client, body=models.WorkingGroupIn(name=name))
    assert isinstance(group, models.WorkingGroup), group
    assert group.name == name
    assert group.anonymity_threshold == 3


async def test_an_error_is_parsed_as_problem_details(api_client):
    get_one = _module("api.findings.v1_findings_finding_id_get_one")
    models = _module("models")
    problem = await get_one.asyncio(client=api_client, finding_id=uuid.uuid4())
    assert isinstance(problem, models.Problem), problem
    assert (problem.status, problem.type_) == (404, "/problems/not-found")

    create = _module("api.working_groups.v1_working_groups_create")
    refused = await create.asyncio(
        client=api_client, body=models.WorkingGroupIn(name="x", anonymity_threshold=1)
    )
    assert isinstance(refused, models.Problem), refused
    assert refused.status == 422
    assert [error.field for error in refused.errors] == ["anonymity_threshold"]
