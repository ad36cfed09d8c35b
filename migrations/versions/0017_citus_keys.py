"""Citus-ready keys: `tenant_id` leads the primary key and every unique key of the tenant tables,
and the foreign keys between tenant tables carry it.

Revision ID: 0017_citus_keys
Revises: 0016_co_sourcing

Citus (design decision 10) distributes a table on one column and needs that column in its primary
key, in each unique constraint, and on both sides of a foreign key between distributed tables. The
tables below were keyed on `id` (or `seq`) alone; they now have `PRIMARY KEY (tenant_id, id)`
(`(tenant_id, seq)` for the event feed and the audit log). Each keeps a plain index on `id`: the
owner's functions look rows up by id across tenants, and such a look-up must stay an index scan.

The foreign keys `shares -> findings`, `payments -> pledges` and `ledger_bookings -> payments` now
name `tenant_id` on both sides, which also means the database itself refuses a share of another
tenant's finding or a payment against another tenant's pledge. A payment's booking carries the
payer's `tenant_id` (funding service); the group's own bookings have neither a tenant nor a
payment, so the composite key is not checked for them (MATCH SIMPLE).

Tables that keep a key without `tenant_id` on purpose are listed, with the reason, in
`tests/isolation/test_citus_ready.py` and placed in `deploy/SCALING.md`.
"""

from __future__ import annotations

from alembic import op

revision = "0017_citus_keys"
down_revision = "0016_co_sourcing"
branch_labels = None
depends_on = None

# Tables whose primary key was (id) alone.
ID_KEYED = ("agenda_items", "findings", "invitations", "payments", "pledges", "shares", "users")
# Tables whose primary key was (seq) alone and which had UNIQUE (id) besides.
SEQ_KEYED = ("audit_log", "events")

# (table, constraint, old definition, new definition)
FOREIGN_KEYS = (
    (
        "shares",
        "shares_finding_id_fkey",
        "FOREIGN KEY (finding_id) REFERENCES findings (id) ON DELETE CASCADE",
        "FOREIGN KEY (tenant_id, finding_id) REFERENCES findings (tenant_id, id) ON DELETE CASCADE",
    ),
    (
        "payments",
        "payments_pledge_id_fkey",
        "FOREIGN KEY (pledge_id) REFERENCES pledges (id) ON DELETE CASCADE",
        "FOREIGN KEY (tenant_id, pledge_id) REFERENCES pledges (tenant_id, id) ON DELETE CASCADE",
    ),
    (
        "ledger_bookings",
        "ledger_bookings_payment_id_fkey",
        "FOREIGN KEY (payment_id) REFERENCES payments (id) ON DELETE CASCADE",
        "FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id) ON DELETE CASCADE",
    ),
)


def upgrade() -> None:
    # Foreign keys depend on the unique index they reference: drop them before the keys change.
    for table, name, _, _ in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table in ID_KEYED:
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
            f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (tenant_id, id)"
        )
        op.execute(f"CREATE INDEX {table}_id ON {table} (id)")
    for table in SEQ_KEYED:
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
            f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (tenant_id, seq), "
            f"DROP CONSTRAINT {table}_id_key, "
            f"ADD CONSTRAINT {table}_id_key UNIQUE (tenant_id, id)"
        )
        op.execute(f"CREATE INDEX {table}_id ON {table} (id)")
    for table, name, _, new in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {new}")


def downgrade() -> None:
    for table, name, _, _ in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for table in SEQ_KEYED:
        op.execute(f"DROP INDEX {table}_id")
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
            f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (seq), "
            f"DROP CONSTRAINT {table}_id_key, "
            f"ADD CONSTRAINT {table}_id_key UNIQUE (id)"
        )
    for table in ID_KEYED:
        op.execute(f"DROP INDEX {table}_id")
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
            f"ADD CONSTRAINT {table}_pkey PRIMARY KEY (id)"
        )
    for table, name, old, _ in FOREIGN_KEYS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {old}")
