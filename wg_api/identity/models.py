"""Identity tables: tenants (the directory), API clients, identity providers, users, audit log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, UUID

from wg_api.platform.models import metadata

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False, server_default="Asia/Hong_Kong"),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("country", sa.Text),
    sa.Column("working_hours", JSONB, nullable=False),
)

# The other names a tenant goes by, in its chosen order; each tenant reads only its own (RLS).
tenant_aliases = sa.Table(
    "tenant_aliases",
    metadata,
    sa.Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("position", sa.SmallInteger, primary_key=True),
    sa.Column("alias", sa.Text, nullable=False),
)

api_clients = sa.Table(
    "api_clients",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("client_id", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("scopes", ARRAY(sa.Text), nullable=False),
    sa.Column("secret_hash", BYTEA, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("secret_rotated_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

identity_providers = sa.Table(
    "identity_providers",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("issuer", sa.Text, nullable=False, unique=True),
    sa.Column("audience", sa.Text, nullable=False),
    sa.Column("jwks_uri", sa.Text),
    sa.Column("role_claim", sa.Text),
    sa.Column("default_role", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column(
        "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
    ),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("identity_provider_id", UUID(as_uuid=True)),
    sa.Column("issuer", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("id", UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()")),
    sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("actor_type", sa.Text, nullable=False),
    sa.Column("actor_id", UUID(as_uuid=True)),
    sa.Column("actor_name", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target_type", sa.Text, nullable=False),
    sa.Column("target_id", UUID(as_uuid=True)),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)
