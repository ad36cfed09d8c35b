"""Supplier endpoints: matching, the caller's supplier list, the common registry."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.platform.http import Body, etag_of
from wg_api.platform.pagination import Page, Pagination, page_response
from wg_api.platform.transaction import DbSession
from wg_api.suppliers import service
from wg_api.suppliers.schemas import (
    MySupplier,
    Supplier,
    SupplierIn,
    SupplierLinkOut,
    SupplierMatchIn,
    SupplierMatchOut,
)

SearchQuery = Annotated[
    str | None,
    QueryParameter(name="q", min_length=1, max_length=200, description="Part of a name or code."),
]
CountryQuery = Annotated[
    str | None,
    QueryParameter(name="country", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2."),
]


class SuppliersController(Controller):
    path = "/suppliers"
    tags = ["Suppliers"]

    @post(
        "/match",
        summary="Find registry suppliers that match",
        status_code=200,
        data_dto=Body[SupplierMatchIn],
        **requires("findings:read"),
    )
    async def match(
        self, data: JSONBody[SupplierMatchIn], db_session: DbSession
    ) -> SupplierMatchOut:
        """Ranked candidates with a confidence from 0 to 1 and a reason; creates nothing."""
        return await service.match(db_session, data)

    @post(
        summary="Link to a supplier, creating it if new",
        data_dto=Body[SupplierIn],
        responses={},
        **requires("findings:write"),
    )
    async def link(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[SupplierIn],
        db_session: DbSession,
    ) -> Response[SupplierLinkOut]:
        """Link your tenant to a supplier: by `supplier_id`, by `os_id`, or by an exact normalised
        name + address + country match; otherwise create it. 201 when created, 200 when linked."""
        result, created = await service.link_or_create(db_session, request.user.tenant_id, data)
        return Response(result, status_code=201 if created else 200)

    @get(summary="Your suppliers", **requires("findings:read"))
    async def list_mine(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        q: SearchQuery = None,
        country: CountryQuery = None,
    ) -> Response[Page[MySupplier]]:
        """The suppliers your tenant links to, with your `internal_code`, ordered by name."""
        result = await service.list_mine(
            db_session,
            request.user.tenant_id,
            q=q,
            country=country,
            after=page.after,
            limit=page.limit,
        )
        return page_response(request, result)

    @get("/{supplier_id:uuid}", summary="One of your suppliers", **requires("findings:read"))
    async def get_one(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        supplier_id: FromPath[uuid.UUID],
    ) -> Response[MySupplier | Supplier]:
        """Canonical fields of a supplier you link to (with your `internal_code`), or of one that
        appears in a shared finding you can see (without any code: it is not yours)."""
        supplier = await service.get_for_reader(db_session, request.user.tenant_id, supplier_id)
        return Response(supplier, headers={"ETag": etag_of(supplier)})

    @delete("/{supplier_id:uuid}", summary="Unlink a supplier", **requires("findings:write"))
    async def unlink(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        supplier_id: FromPath[uuid.UUID],
    ) -> None:
        """Removes your link (and your internal code); the registry entry stays."""
        await service.unlink(db_session, request.user.tenant_id, supplier_id)


class SupplierRegistryController(Controller):
    path = "/supplier-registry"
    tags = ["Suppliers"]

    @get(summary="Search the common supplier registry", **requires("findings:read"))
    async def search(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        page: Pagination,
        q: SearchQuery = None,
        country: CountryQuery = None,
    ) -> Response[Page[Supplier]]:
        """Canonical fields only; nothing about which tenants link to a supplier."""
        result = await service.search_registry(
            db_session, q=q, country=country, after=page.after, limit=page.limit
        )
        return page_response(request, result)
