"""Each group's reader row carries a version: `group_readers.version`.

Revision ID: 0021_group_reader_versions
Revises: 0020_group_readers

The list of shared findings joined the group's reader row to its page and put the names to redact
on the page's first row, which took a window and a sort over the page, in every request, for a
list of names that changes only when the group's members, invitations or their names change.

Every recount of a row (`wg_refresh_group_readers`, 0020) now also takes a new value from one
sequence, `group_reader_versions`. A recount locks its row before it takes the value, so two
changes of one group commit their versions in the order they took them: a larger version of a
group is always the newer row. The page statement answers the version on each row; a server keeps
the names it last read for a group with their version and reads the row again only when the page
shows a newer one (`wg_api.sharing.service`).

The version is never shown to a client. It counts every group's recounts, so it says nothing about
any one group.
"""

from __future__ import annotations

from pathlib import Path
from runpy import run_path

from alembic import op

from wg_api.platform.rls import migration_role

revision = "0021_group_reader_versions"
down_revision = "0020_group_readers"
branch_labels = None
depends_on = None

_REFRESH = str(run_path(str(Path(__file__).with_name("0020_group_readers.py")))["REFRESH"])
_RECOUNT = "UPDATE public.group_readers r SET\n"
if _RECOUNT not in _REFRESH:  # the migration must not apply to another body
    raise RuntimeError("0020's wg_refresh_group_readers changed: 0021 no longer applies to it")
_REFRESH_WITH_VERSION = _REFRESH.replace(
    _RECOUNT, _RECOUNT + "version = nextval('public.group_reader_versions'),\n", 1
).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    app = migration_role("app")
    op.execute("CREATE SEQUENCE group_reader_versions")
    op.execute(f"REVOKE ALL ON SEQUENCE group_reader_versions FROM PUBLIC, {app}")
    # Every existing row takes a value of its own.
    op.execute(
        "ALTER TABLE group_readers ADD COLUMN version bigint NOT NULL "
        "DEFAULT nextval('group_reader_versions')"
    )
    op.execute(_REFRESH_WITH_VERSION)


def downgrade() -> None:
    op.execute(_REFRESH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("ALTER TABLE group_readers DROP COLUMN version")
    op.execute("DROP SEQUENCE group_reader_versions")
