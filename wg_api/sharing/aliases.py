"""What sharing makes of a tenant's aliases: an ordinary word is nobody's alias, and a change of
aliases re-scrubs the tenant's active shares. Identity validates and stores aliases but cannot
import sharing (sharing imports identity), so app.py and the command line hand it `ALIAS_POLICY`.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.findings import service as findings
from wg_api.identity.service import AliasPolicy
from wg_api.sharing import repository, service
from wg_api.sharing.words import is_common_word

BATCH = 500  # findings read per query while looking for those to rebuild
_WORD_SEPARATORS = re.compile(r"[\s\-_/&.,()]+")
_HAN_KANA_HANGUL = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


def common_word_refusal(alias: str) -> str | None:
    """An alias made only of common words or legal suffixes ("Kids", "Apparel Ltd") would
    censor ordinary text in every group: refused."""
    words = [word for word in _WORD_SEPARATORS.split(alias) if word]
    if is_common_word(alias) or (words and all(is_common_word(word) for word in words)):
        return "is a common word (or only common words and legal forms), which nobody may censor"
    return None


def _folded(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").casefold()


def _pieces(alias: str) -> set[str]:
    """Substrings of which at least one is in any text the scrubber could find `alias` (or a
    variant of it: a word on its own, a part of a name in Chinese) in: its words, and the
    character pairs of its Chinese, Japanese or Korean words."""
    words = [word for word in _WORD_SEPARATORS.split(_folded(alias)) if word]
    pieces: set[str] = set()
    for word in words:
        if _HAN_KANA_HANGUL.search(word):
            pieces.update(word[i : i + 2] for i in range(max(len(word) - 1, 1)))
        elif len(word) >= 3:  # shorter words never stand alone, and the whole name has them all
            pieces.add(word)
    return pieces or {max(words, key=len, default=_folded(alias))}


def may_mention(text: str, aliases: Collection[str]) -> bool:
    """False only when no scrubbing of `aliases` can change `text` (a cheap, generous test)."""
    folded = _folded(text)
    return any(piece in folded for alias in aliases for piece in _pieces(alias))


async def rescrub_shares(
    session: AsyncConnection, tenant_id: uuid.UUID, changed: Collection[str]
) -> int:
    """Rebuild every active share of the tenant's findings whose text may mention one of the
    `changed` aliases (added or removed), with the names the tenant has now. Answers how many
    findings were rebuilt."""
    rebuilt = 0
    shared = await repository.active_shared_finding_ids(session, tenant_id)
    for start in range(0, len(shared), BATCH):
        for finding in await findings.get_many(session, tenant_id, shared[start : start + BATCH]):
            if may_mention(msgspec.json.encode(finding).decode(), changed):
                await service.refresh(session, tenant_id, finding)
                rebuilt += 1
    return rebuilt


class SharingAliasPolicy:
    def refusal(self, alias: str) -> str | None:
        return common_word_refusal(alias)

    async def after_change(
        self, session: AsyncConnection, tenant_id: uuid.UUID, changed: Collection[str]
    ) -> None:
        await rescrub_shares(session, tenant_id, changed)


ALIAS_POLICY: AliasPolicy = SharingAliasPolicy()
