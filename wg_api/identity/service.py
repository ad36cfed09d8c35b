"""Identity rules: tenants, API clients, identity providers, people and the audit log."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, get_args
from urllib.parse import urlsplit

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.identity import repository
from wg_api.identity.principal import Principal
from wg_api.identity.provider_keys import check_issuer_proof
from wg_api.identity.schemas import (
    ApiClientOut,
    AuditActorOut,
    AuditEntryOut,
    AuditTargetOut,
    IdentityProviderCreate,
    IdentityProviderOut,
    TenantOut,
    TenantProfile,
    TenantProfilePatch,
    Weekday,
    WorkingHours,
)
from wg_api.identity.scopes import ROLE_SCOPES, SCOPES, TENANT_ROLES, parse_scopes, unknown_scopes
from wg_api.identity.tokens import ClientRecord, hash_secret, new_client_id, new_client_secret
from wg_api.platform.database import row_mapping
from wg_api.platform.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from wg_api.platform.events import record_event
from wg_api.platform.outbound import OutboundClient, OutboundError, RefusedAddress
from wg_api.platform.pagination import (
    Page,
    PageParams,
    identifier,
    keyset,
    moment,
    paginate,
    whole_number,
)
from wg_api.platform.validation import is_country_code, is_valid_timezone, slug_error

TENANT_KINDS = ("brand", "facilitator")


async def create_tenant(
    session: AsyncConnection,
    *,
    slug: str,
    name: str,
    kind: str,
    timezone: str,
    country: str | None = None,
    aliases: Sequence[str] = (),
    alias_policy: AliasPolicy | None = None,
) -> dict[str, Any]:
    """A new tenant (the command line and tests). Aliases need the `alias_policy` the app is
    wired with; they are validated as a PATCH of /v1/tenant validates them, and the rest of the
    transaction then acts for the new tenant (its aliases are under tenant RLS)."""
    errors: list[FieldError] = []
    if message := slug_error(slug):
        errors.append(FieldError("slug", message))
    if not 1 <= len(name.strip()) <= 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    if kind not in TENANT_KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(TENANT_KINDS)}"))
    if not is_valid_timezone(timezone):
        errors.append(FieldError("timezone", TIMEZONE_MESSAGE))
    if country is not None and not is_country_code(country):
        errors.append(FieldError("country", COUNTRY_MESSAGE))
    cleaned, alias_errors = alias_shape(aliases, alias_policy)
    errors += alias_errors
    if errors:
        raise ValidationFailed("The tenant is not valid.", errors=errors)
    if await repository.tenant_by_slug(session, slug) is not None:
        raise ValidationFailed(
            "The tenant is not valid.", errors=[FieldError("slug", "is already taken")]
        )
    if cleaned:
        await _check_taken(session, cleaned)
    row = await repository.create_tenant(
        session,
        slug=slug,
        name=name.strip(),
        kind=kind,
        timezone=timezone,
        country=country,
        aliases=[alias for _, alias in cleaned],
    )
    created = dict(row._mapping)
    created["aliases"] = [alias for _, alias in cleaned]
    return created


# ---- the tenant's profile ----------------------------------------------------------------------

TENANT_NOT_FOUND = "No such tenant."
TIMEZONE_MESSAGE = "must be an IANA time zone such as Asia/Hong_Kong"
COUNTRY_MESSAGE = "must be an ISO 3166-1 alpha-2 country code such as HK, or null"
WEEKDAYS: tuple[str, ...] = get_args(Weekday)
MAX_ALIASES = 50
MAX_ALIAS_LENGTH = 100
_QUARTER_HOUR = re.compile(r"^([01][0-9]|2[0-3]):(00|15|30|45)$")
_SEPARATORS = re.compile(r"[\s_\-]+")
# Han, kana and Hangul: a name in these scripts may be two characters long.
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff]"
)


class AliasPolicy(Protocol):
    """What sharing adds to aliases, handed in where the app is wired (identity cannot import
    sharing: sharing imports identity)."""

    def refusal(self, alias: str) -> str | None:
        """Why nobody may have `alias` (it is a common word), or None."""

    async def after_change(
        self, session: AsyncConnection, tenant_id: uuid.UUID, changed: Collection[str]
    ) -> None:
        """In the transaction that changed the tenant's aliases (`changed`: those added or
        removed): apply the change where it counts."""


def normalise_alias(raw: str) -> str:
    """NFKC, without format characters (zero-width spaces ...), inner spaces as one, trimmed."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split())


def alias_key(alias: str) -> str:
    """Two aliases are the same when their keys are (as the database's `tenant_name_key`)."""
    return _SEPARATORS.sub(" ", alias.casefold()).strip()


def alias_shape(
    raw: Sequence[str], policy: AliasPolicy | None
) -> tuple[list[tuple[int, str]], list[FieldError]]:
    """The aliases normalised and without repeats (the first of equal ones stays), each with its
    index in `raw` for error messages; and what is wrong with them, the database aside."""
    if len(raw) > MAX_ALIASES:
        return [], [FieldError("aliases", f"at most {MAX_ALIASES} aliases, not {len(raw)}")]
    if raw and policy is None:
        raise TypeError("aliases need the alias policy the app is wired with")
    errors: list[FieldError] = []
    cleaned: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, value in enumerate(raw):
        alias = normalise_alias(value)
        field = f"aliases[{index}]"
        shortest = 2 if _CJK.search(alias) else 3
        if not shortest <= len(alias) <= MAX_ALIAS_LENGTH:
            errors.append(
                FieldError(
                    field,
                    f"must be {shortest} to {MAX_ALIAS_LENGTH} characters "
                    "(2 when it holds a Chinese, Japanese or Korean character)",
                )
            )
            continue
        if policy is not None and (refusal := policy.refusal(alias)):
            errors.append(FieldError(field, refusal))
            continue
        if alias_key(alias) in seen:
            continue
        seen.add(alias_key(alias))
        cleaned.append((index, alias))
    return cleaned, errors


async def _check_taken(session: AsyncConnection, cleaned: list[tuple[int, str]]) -> None:
    taken = await repository.names_taken(session, [alias for _, alias in cleaned])
    errors = [
        FieldError(f"aliases[{index}]", "is another tenant's name, slug or alias")
        for index, alias in cleaned
        if alias in taken
    ]
    if errors:
        raise ValidationFailed("Some aliases cannot be yours.", errors=errors)


def working_hours_errors(hours: WorkingHours) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in ("start", "end"):
        if not _QUARTER_HOUR.match(getattr(hours, name)):
            errors.append(FieldError(f"working_hours.{name}", "must be HH:MM on the quarter hour"))
    if not errors and hours.end <= hours.start:
        errors.append(FieldError("working_hours.end", "must be after start, on the same day"))
    if not hours.days:
        errors.append(FieldError("working_hours.days", "must hold at least one day"))
    elif unknown := [d for d in hours.days if d not in WEEKDAYS]:
        errors.append(
            FieldError("working_hours.days", f"unknown days {unknown}: use {', '.join(WEEKDAYS)}")
        )
    elif len(set(hours.days)) != len(hours.days):
        errors.append(FieldError("working_hours.days", "must not repeat a day"))
    return errors


def _profile_out(row: Any, aliases: list[str]) -> TenantProfile:
    hours = row.working_hours
    return TenantProfile(
        id=row.id,
        slug=row.slug,
        name=row.name,
        kind=row.kind,
        timezone=row.timezone,
        country=row.country,
        working_hours=WorkingHours(start=hours["start"], end=hours["end"], days=hours["days"]),
        aliases=aliases,
    )


async def tenant_profile(
    session: AsyncConnection, tenant_id: uuid.UUID, *, for_update: bool = False
) -> TenantProfile:
    """`for_update`: locked until the transaction ends, so a check of If-Match holds."""
    row = await repository.tenant_by_id(session, tenant_id, for_update=for_update)
    if row is None:
        raise NotFound(TENANT_NOT_FOUND)
    return _profile_out(row, await repository.aliases_of(session, tenant_id))


@dataclass(frozen=True)
class WorkingTime:
    """When a tenant works: what meeting slots weigh. Aliases stay private to their tenant."""

    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    country: str | None
    working_hours: WorkingHours


async def working_times(
    session: AsyncConnection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WorkingTime]:
    """Zone, country and working hours of these tenants, by id, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found: dict[uuid.UUID, WorkingTime] = {}
    for row in await repository.working_times(session, wanted):
        hours = row.working_hours
        found[row.id] = WorkingTime(
            id=row.id,
            slug=row.slug,
            name=row.name,
            timezone=row.timezone,
            country=row.country,
            working_hours=WorkingHours(start=hours["start"], end=hours["end"], days=hours["days"]),
        )
    return found


async def change_tenant_profile(
    session: AsyncConnection,
    actor: Principal,
    current: TenantProfile,
    patch: TenantProfilePatch,
    alias_policy: AliasPolicy,
) -> TenantProfile:
    """Change what was sent; an alias change is applied to the tenant's shares before this
    answers. Audited and announced to the tenant (`tenant.updated`) when something changed."""
    errors: list[FieldError] = []
    wanted: dict[str, Any] = {}
    if patch.timezone is not msgspec.UNSET:
        if not is_valid_timezone(patch.timezone):
            errors.append(FieldError("timezone", TIMEZONE_MESSAGE))
        elif patch.timezone != current.timezone:
            wanted["timezone"] = patch.timezone
    if patch.country is not msgspec.UNSET:
        if patch.country is not None and not is_country_code(patch.country):
            errors.append(FieldError("country", COUNTRY_MESSAGE))
        elif patch.country != current.country:
            wanted["country"] = patch.country
    if patch.working_hours is not msgspec.UNSET:
        hours = patch.working_hours
        if hours_errors := working_hours_errors(hours):
            errors += hours_errors
        else:
            ordered = WorkingHours(
                start=hours.start, end=hours.end, days=[d for d in WEEKDAYS if d in hours.days]
            )
            if ordered != current.working_hours:
                wanted["working_hours"] = msgspec.to_builtins(ordered)
    cleaned: list[tuple[int, str]] = []
    aliases_change = False
    if patch.aliases is not msgspec.UNSET:
        cleaned, alias_errors = alias_shape(patch.aliases, alias_policy)
        errors += alias_errors
        aliases_change = [alias for _, alias in cleaned] != current.aliases
    if errors:
        raise ValidationFailed("The tenant's profile is not valid.", errors=errors)
    if aliases_change:
        await _check_taken(session, cleaned)
    if not wanted and not aliases_change:
        return current
    if wanted:
        await repository.update_tenant(session, actor.tenant_id, wanted)
    if aliases_change:
        await repository.replace_aliases(session, actor.tenant_id, [alias for _, alias in cleaned])
        added_or_removed = {a for _, a in cleaned} ^ set(current.aliases)
        await alias_policy.after_change(session, actor.tenant_id, added_or_removed)
    changed = await tenant_profile(session, actor.tenant_id)
    fields = sorted([*wanted, *(["aliases"] if aliases_change else [])])
    before = msgspec.to_builtins(current)
    after = msgspec.to_builtins(changed)
    await audit(
        session,
        actor.tenant_id,
        actor,
        "tenant.updated",
        "tenant",
        actor.tenant_id,
        {
            "changed": fields,
            "from": {f: before[f] for f in fields},
            "to": {f: after[f] for f in fields},
        },
    )
    await record_event(
        session, actor.tenant_id, "tenant.updated", {"tenant": after, "changed": fields}
    )
    return changed


def tenant_out(row: Any) -> TenantOut:
    """From a SQLAlchemy row or an asyncpg Record (`tenants_by_id`'s driver path)."""
    m = row_mapping(row)
    return TenantOut(id=m["id"], slug=m["slug"], name=m["name"], kind=m["kind"])


async def tenants_by_id(
    session: AsyncConnection, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, TenantOut]:
    """The directory entries of these tenants (every tenant's entry is public), by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {row["id"]: tenant_out(row) for row in await repository.tenants_by_id(session, wanted)}


async def tenant_by_slug(session: AsyncConnection, slug: str) -> TenantOut | None:
    row = await repository.tenant_by_slug(session, slug)
    return tenant_out(row) if row is not None else None


async def tenant_by_id(session: AsyncConnection, tenant_id: uuid.UUID) -> TenantOut | None:
    return (await tenants_by_id(session, [tenant_id])).get(tenant_id)


async def tenant_directory(
    session: AsyncConnection, q: str | None, page: PageParams
) -> Page[TenantOut]:
    """The public directory: every tenant's id, slug, name and kind, ordered by slug."""
    after = str(page.after[0]) if page.after else None
    rows = await repository.tenant_directory(session, q, after, page.limit + 1)
    return paginate([tenant_out(r) for r in rows], page.limit, lambda t: [t.slug])


async def client_for_token(session: AsyncConnection, client_id: str) -> ClientRecord | None:
    """The client a token request names, with its secret's hash (owner function)."""
    return await repository.client_for_token(session, client_id)


@dataclass(frozen=True)
class NewClient:
    """A client with its secret in clear: answered once, at creation or rotation."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    client_id: str
    client_secret: str
    name: str
    role: str
    scopes: list[str]
    created_at: Any
    secret_rotated_at: Any = None
    revoked_at: Any = None


def default_scopes(role: str) -> list[str]:
    return sorted(ROLE_SCOPES[role])


def check_client_fields(name: str, role: str, scopes: list[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not 1 <= len(name.strip()) <= 100:
        errors.append(FieldError("name", "must be 1 to 100 characters"))
    if role not in TENANT_ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(TENANT_ROLES)}"))
    elif unknown := unknown_scopes(scopes):
        errors.append(FieldError("scopes", f"unknown scopes: {' '.join(unknown)}"))
    elif extra := sorted(set(scopes) - ROLE_SCOPES[role]):
        errors.append(FieldError("scopes", f"a {role} client cannot hold: {' '.join(extra)}"))
    return errors


# ---- the audit log -----------------------------------------------------------------------------

SYSTEM_ACTOR_NAME = "wg-api command line"


async def audit(
    session: AsyncConnection,
    tenant_id: uuid.UUID,
    actor: Principal | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | None,
    details: dict[str, Any],
) -> None:
    """Record a security-relevant action in the caller's transaction (None: the command line)."""
    await repository.record_audit(
        session,
        tenant_id=tenant_id,
        actor_type=actor.type if actor else "system",
        actor_id=actor.id if actor else None,
        actor_name=actor.name if actor else SYSTEM_ACTOR_NAME,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details,
    )


async def read_audit_log(
    session: AsyncConnection, tenant_id: uuid.UUID, *, limit: int, after: tuple[Any, ...] | None
) -> Page[AuditEntryOut]:
    position = keyset(after, whole_number)
    before_seq: int | None = position[0] if position else None
    rows = await repository.list_audit(session, tenant_id, limit=limit + 1, before_seq=before_seq)
    seq_of = {row.id: row.seq for row in rows}
    entries = [
        AuditEntryOut(
            id=row.id,
            occurred_at=row.occurred_at,
            action=row.action,
            actor=AuditActorOut(type=row.actor_type, id=row.actor_id, name=row.actor_name),
            target=AuditTargetOut(type=row.target_type, id=row.target_id),
            details=row.details,
        )
        for row in rows
    ]
    return paginate(entries, limit, lambda entry: [seq_of[entry.id]])


# ---- API clients -------------------------------------------------------------------------------

CLIENT_NOT_FOUND = "No API client with this id."
PROVIDER_NOT_FOUND = "No identity provider with this id."


def _client_details(row: Any) -> dict[str, Any]:
    return {"client_id": row.client_id, "name": row.name, "role": row.role, "scopes": row.scopes}


def client_out(row: Any) -> ApiClientOut:
    return ApiClientOut(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        role=row.role,
        scopes=list(row.scopes),
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
        revoked_at=row.revoked_at,
    )


async def create_client(
    session: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    name: str,
    role: str,
    scopes: list[str] | None,
    actor: Principal | None = None,
) -> NewClient:
    """Create a client of `tenant_id`; `actor` None means the command line (no grant limit)."""
    chosen = (
        sorted(set(scopes))
        if scopes is not None
        else default_scopes(role)
        if role in TENANT_ROLES
        else []
    )
    if errors := check_client_fields(name, role, chosen):
        raise ValidationFailed("The client is not valid.", errors=errors)
    if actor is not None and (beyond := sorted(set(chosen) - actor.scopes)):
        raise Forbidden(
            f"You cannot grant scopes you do not hold: {' '.join(beyond)}. "
            "Ask for fewer scopes, or create the client with a token that holds them."
        )
    secret = new_client_secret()
    row = await repository.create_client(
        session,
        tenant_id=tenant_id,
        client_id=new_client_id(),
        name=name.strip(),
        role=role,
        scopes=chosen,
        secret_hash=hash_secret(secret),
    )
    await audit(
        session, tenant_id, actor, "api_client.created", "api_client", row.id, _client_details(row)
    )
    return NewClient(
        id=row.id,
        tenant_id=tenant_id,
        client_id=row.client_id,
        client_secret=secret,
        name=row.name,
        role=row.role,
        scopes=list(row.scopes),
        created_at=row.created_at,
    )


def _keyset_of(item: ApiClientOut | IdentityProviderOut) -> list[str]:
    return [item.created_at.isoformat(), str(item.id)]


async def list_clients(
    session: AsyncConnection, tenant_id: uuid.UUID, *, limit: int, after: tuple[Any, ...] | None
) -> Page[ApiClientOut]:
    rows = await repository.list_clients(
        session, tenant_id, limit=limit + 1, after=keyset(after, moment, identifier)
    )
    return paginate([client_out(row) for row in rows], limit, _keyset_of)


async def get_client(
    session: AsyncConnection, tenant_id: uuid.UUID, client_uuid: uuid.UUID
) -> ApiClientOut:
    row = await repository.client_by_id(session, tenant_id, client_uuid)
    if row is None:
        raise NotFound(CLIENT_NOT_FOUND)
    return client_out(row)


async def revoke_client(
    session: AsyncConnection, actor: Principal, client_uuid: uuid.UUID
) -> ApiClientOut:
    """Revoke a client: no new tokens at once, its live tokens within the revocation window.

    Revoking a revoked client changes nothing and answers it as it is.
    """
    row = await repository.revoke_client(session, actor.tenant_id, client_uuid)
    if row is None:
        return await get_client(session, actor.tenant_id, client_uuid)
    await audit(
        session,
        actor.tenant_id,
        actor,
        "api_client.revoked",
        "api_client",
        row.id,
        _client_details(row),
    )
    return client_out(row)


async def revoke_clients_named(session: AsyncConnection, tenant_id: uuid.UUID, name: str) -> int:
    """The command line's revocation (the demo replaces its clients): every live client of
    `tenant_id` called `name`, audited as the system. Answers how many were revoked."""
    revoked = 0
    after: tuple[Any, ...] | None = None
    while True:
        page = await list_clients(session, tenant_id, limit=200, after=after)
        for client in page.items:
            if client.name != name or client.revoked_at is not None:
                continue
            row = await repository.revoke_client(session, tenant_id, client.id)
            if row is not None:
                await audit(
                    session,
                    tenant_id,
                    None,
                    "api_client.revoked",
                    "api_client",
                    row.id,
                    _client_details(row),
                )
                revoked += 1
        if page.next_cursor is None:
            return revoked
        after = (page.items[-1].created_at, page.items[-1].id)


async def rotate_client_secret(
    session: AsyncConnection, actor: Principal, client_uuid: uuid.UUID
) -> NewClient:
    """A new secret for a live client; the old one stops working when this commits."""
    secret = new_client_secret()
    row = await repository.replace_client_secret(
        session, actor.tenant_id, client_uuid, hash_secret(secret)
    )
    if row is None:
        await get_client(session, actor.tenant_id, client_uuid)  # 404 when it is not ours
        raise Conflict("A revoked client cannot get a new secret; create a new client instead.")
    await audit(
        session,
        actor.tenant_id,
        actor,
        "api_client.secret_rotated",
        "api_client",
        row.id,
        _client_details(row),
    )
    return NewClient(
        id=row.id,
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        client_secret=secret,
        name=row.name,
        role=row.role,
        scopes=list(row.scopes),
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
        revoked_at=row.revoked_at,
    )


# ---- identity providers ------------------------------------------------------------------------

_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_:./-]{1,100}$")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def url_error(value: str) -> str | None:
    """An issuer or JWKS URI must be an absolute https URL (http only on this machine)."""
    if not 1 <= len(value) <= 2000:
        return "must be 1 to 2000 characters"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "must be an absolute URL"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an absolute https URL"
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        return "must use https"
    if parts.fragment or parts.username or parts.password:
        return "must have no fragment and no credentials"
    return None


def provider_out(row: Any) -> IdentityProviderOut:
    return IdentityProviderOut(
        id=row.id,
        issuer=row.issuer,
        audience=row.audience,
        jwks_uri=row.jwks_uri,
        role_claim=row.role_claim,
        default_role=row.default_role,
        created_at=row.created_at,
    )


def _provider_details(row: Any) -> dict[str, Any]:
    return {
        "issuer": row.issuer,
        "audience": row.audience,
        "jwks_uri": row.jwks_uri,
        "role_claim": row.role_claim,
        "default_role": row.default_role,
    }


MAX_PROOF_TOKEN_LENGTH = 16 * 1024


def _provider_field_errors(data: IdentityProviderCreate, own_issuer: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if message := url_error(data.issuer):
        errors.append(FieldError("issuer", message))
    elif data.issuer.rstrip("/") == own_issuer.rstrip("/"):
        errors.append(FieldError("issuer", "is this service's own issuer"))
    if not 1 <= len(data.audience) <= 500 or data.audience != data.audience.strip():
        errors.append(FieldError("audience", "must be 1 to 500 characters, no outer spaces"))
    if data.jwks_uri is not None and (message := url_error(data.jwks_uri)):
        errors.append(FieldError("jwks_uri", message))
    if data.role_claim is not None and not _CLAIM_NAME.match(data.role_claim):
        errors.append(
            FieldError("role_claim", "must be a claim name: 1 to 100 letters, digits or _:./-")
        )
    if not 1 <= len(data.proof_token) <= MAX_PROOF_TOKEN_LENGTH:
        errors.append(FieldError("proof_token", "must be a JWT of at most 16384 characters"))
    return errors


async def add_identity_provider(
    session: AsyncConnection,
    actor: Principal,
    data: IdentityProviderCreate,
    *,
    own_issuer: str,
    outbound: OutboundClient,
) -> IdentityProviderOut:
    """Register the tenant's OIDC issuer once its `proof_token` shows the tenant controls it.

    In this order, so that nothing is fetched from a refused address and nothing is said about
    an issuer before its proof: the fields, the addresses of `issuer` and `jwks_uri`, the proof,
    and only then whether another tenant has the issuer (409: an issuer belongs to one tenant).
    """
    errors = _provider_field_errors(data, own_issuer)
    if errors:
        raise ValidationFailed("The identity provider is not valid.", errors=errors)
    for field, url in (("issuer", data.issuer), ("jwks_uri", data.jwks_uri)):
        if url is None:
            continue
        try:
            await outbound.address_for(url)
        except RefusedAddress as refused:
            errors.append(
                FieldError(field, f"is at an address this service does not call: {refused.reason}")
            )
        except OutboundError:
            errors.append(FieldError(field, "has a host that could not be resolved"))
    if errors:
        raise ValidationFailed("The identity provider is not valid.", errors=errors)
    await check_issuer_proof(
        outbound,
        issuer=data.issuer,
        audience=data.audience,
        jwks_uri=data.jwks_uri,
        proof_token=data.proof_token,
    )
    row = await repository.create_provider(
        session,
        tenant_id=actor.tenant_id,
        issuer=data.issuer,
        audience=data.audience,
        jwks_uri=data.jwks_uri,
        role_claim=data.role_claim,
        default_role=data.default_role,
    )
    if row is None:
        raise Conflict(
            "This issuer is already registered; an issuer belongs to exactly one tenant."
        )
    await audit(
        session,
        actor.tenant_id,
        actor,
        "identity_provider.added",
        "identity_provider",
        row.id,
        _provider_details(row),
    )
    return provider_out(row)


async def list_identity_providers(
    session: AsyncConnection, tenant_id: uuid.UUID, *, limit: int, after: tuple[Any, ...] | None
) -> Page[IdentityProviderOut]:
    rows = await repository.list_providers(
        session, tenant_id, limit=limit + 1, after=keyset(after, moment, identifier)
    )
    return paginate([provider_out(row) for row in rows], limit, _keyset_of)


async def get_identity_provider(
    session: AsyncConnection, tenant_id: uuid.UUID, provider_id: uuid.UUID
) -> IdentityProviderOut:
    row = await repository.provider_by_id(session, tenant_id, provider_id)
    if row is None:
        raise NotFound(PROVIDER_NOT_FOUND)
    return provider_out(row)


async def remove_identity_provider(
    session: AsyncConnection, actor: Principal, provider_id: uuid.UUID
) -> IdentityProviderOut:
    """Remove the registration; its people keep their records but can no longer sign in."""
    row = await repository.delete_provider(session, actor.tenant_id, provider_id)
    if row is None:
        raise NotFound(PROVIDER_NOT_FOUND)
    await audit(
        session,
        actor.tenant_id,
        actor,
        "identity_provider.removed",
        "identity_provider",
        row.id,
        _provider_details(row),
    )
    return provider_out(row)


async def record_person_seen(
    session: AsyncConnection,
    provider: repository.ProviderRecord,
    *,
    subject: str,
    name: str,
    email: str | None,
    role: str,
) -> uuid.UUID:
    """Record a person on first sight; a role their identity provider changed is audited."""
    user_id, previous_role = await repository.record_user_seen(
        session,
        tenant_id=provider.tenant_id,
        provider_id=provider.id,
        issuer=provider.issuer,
        subject=subject,
        name=name,
        email=email,
        role=role,
    )
    if previous_role is not None and previous_role != role:
        await repository.record_audit(
            session,
            tenant_id=provider.tenant_id,
            actor_type="identity_provider",
            actor_id=provider.id,
            actor_name=provider.issuer,
            action="user.role_changed",
            target_type="user",
            target_id=user_id,
            details={"name": name, "subject": subject, "from": previous_role, "to": role},
        )
    return user_id


async def tenant_for_cli(session: AsyncConnection, slug: str) -> uuid.UUID:
    row = await repository.tenant_by_slug(session, slug)
    if row is None:
        raise NotFound(f"No tenant with slug {slug!r}.")
    tenant_id: uuid.UUID = row.id
    return tenant_id


__all__ = ["SCOPES", "NewClient", "create_client", "create_tenant", "parse_scopes"]


async def names_to_scrub(
    session: AsyncConnection, tenant_id: uuid.UUID
) -> tuple[list[str], list[str]]:
    """The tenant's own name, slug and aliases, and the names of its people, for scrubbing
    shared text."""
    return await repository.names_to_scrub(session, tenant_id)
