"""What sharing makes of a tenant's aliases: an ordinary word is nobody's alias, and a change of
aliases re-scrubs the tenant's active shares. Identity validates and stores aliases but cannot
import sharing (sharing imports identity), so app.py and the command line hand it `ALIAS_POLICY`.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from wg_api.findings import service as findings
from wg_api.identity.service import AliasPolicy
from wg_api.sharing import repository, service
from wg_api.sharing.words import is_common_word

_WORD_SEPARATORS = re.compile(r"[\s\-_/&.,]+")


def common_word_refusal(alias: str) -> str | None:
    """An alias made only of common words or legal suffixes ("Kids", "Apparel Ltd") would
    censor ordinary text in every group: refused."""
    words = [word for word in _WORD_SEPARATORS.split(alias) if word]
    if is_common_word(alias) or (words and all(is_common_word(word) for word in words)):
        return "is a common word (or only common words and legal forms), which nobody may censor"
    return None


async def rescrub_shares(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Rebuild every active share of the tenant's findings with the names it has now."""
    for finding_id in await repository.active_shared_finding_ids(session, tenant_id):
        await service.refresh(
            session, tenant_id, await findings.get(session, tenant_id, finding_id)
        )


class SharingAliasPolicy:
    def refusal(self, alias: str) -> str | None:
        return common_word_refusal(alias)

    async def after_change(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        await rescrub_shares(session, tenant_id)


ALIAS_POLICY: AliasPolicy = SharingAliasPolicy()
