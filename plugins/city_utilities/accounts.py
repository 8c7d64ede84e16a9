"""The utility accounts a customer has linked, kept in their own ``ctx.customer_storage``.

All of a customer's links live under one key, changed only by compare-and-set, so the limit
of ten and the no-duplicates rule hold even when two requests arrive at once. A lost
compare-and-set means another change succeeded; at most ``MAX_ACCOUNTS`` links can succeed
before the limit refuses the rest, so ``MAX_ATTEMPTS`` above that always reaches an answer
(unlinking in between aside).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .billing import CHINA_TIME, UTILITIES

ACCOUNTS_KEY = "accounts"
MAX_ACCOUNTS = 10
MAX_ATTEMPTS = 20
ACCOUNT_NO = re.compile(r"[0-9]{8,12}")


class AccountError(Exception):
    """A link or unlink request cannot be done. ``field`` names the input at fault, if any."""

    def __init__(self, zh: str, en: str, field: str | None = None) -> None:
        super().__init__(en)
        self.message = {"zh": zh, "en": en}
        self.field = field


class InvalidAccount(AccountError):
    """The request is malformed or a field is not valid."""


class DuplicateAccount(AccountError):
    """The account is linked already."""


class TooManyAccounts(AccountError):
    """The customer has linked as many accounts as allowed."""


class Busy(AccountError):
    """Every attempt to save lost a race with another change."""


def read_request(body: Any) -> tuple[str, str]:
    """Return ``(utility, account_no)`` from a link request body, or raise :class:`InvalidAccount`."""
    if not isinstance(body, dict):
        raise InvalidAccount('请求体应为 {"utility": "...", "account_no": "..."}。',
                             'The body must be {"utility": "...", "account_no": "..."}.')
    utility, account_no = body.get("utility"), body.get("account_no")
    if not isinstance(utility, str) or utility not in UTILITIES:
        raise InvalidAccount("utility 必须是 electricity、water 或 gas 之一。",
                             "utility must be one of electricity, water or gas.", "utility")
    if not isinstance(account_no, str) or not ACCOUNT_NO.fullmatch(account_no):
        raise InvalidAccount("account_no 必须是 8 到 12 位数字。", "account_no must be 8 to 12 digits.",
                             "account_no")
    return utility, account_no


def linked(storage: Any) -> list[dict[str, str]]:
    """Return the customer's linked accounts in the order linked; damaged entries are skipped."""
    return _valid_entries(storage.get(ACCOUNTS_KEY))


def _valid_entries(value: Any) -> list[dict[str, str]]:
    entries = []
    for entry in value if isinstance(value, list) else []:
        if (isinstance(entry, dict) and isinstance(entry.get("utility"), str) and entry["utility"] in UTILITIES
                and isinstance(entry.get("account_no"), str) and ACCOUNT_NO.fullmatch(entry["account_no"])):
            linked_at = entry.get("linked_at")
            entries.append({"utility": entry["utility"], "account_no": entry["account_no"],
                            "linked_at": linked_at if isinstance(linked_at, str) else ""})
    return entries


def link(storage: Any, utility: str, account_no: str) -> dict[str, str]:
    """Link an account for the customer and return its entry.

    Raises :class:`DuplicateAccount`, :class:`TooManyAccounts` or :class:`Busy`.
    """
    for _ in range(MAX_ATTEMPTS):
        item = storage.get_item(ACCOUNTS_KEY)
        entries = _valid_entries(item.value if item else None)
        if any(e["utility"] == utility and e["account_no"] == account_no for e in entries):
            raise DuplicateAccount("这个账户已经绑定过了。", "This account is linked already.", "account_no")
        if len(entries) >= MAX_ACCOUNTS:
            raise TooManyAccounts(f"最多可绑定 {MAX_ACCOUNTS} 个账户，请先解绑一个。",
                                  f"You can link at most {MAX_ACCOUNTS} accounts; unlink one first.")
        entry = {"utility": utility, "account_no": account_no,
                 "linked_at": datetime.now(CHINA_TIME).isoformat(timespec="seconds")}
        if storage.compare_and_set(ACCOUNTS_KEY, [*entries, entry], version=item.version if item else None):
            return entry
    raise Busy("账户正在更新，请稍后再试。", "Your accounts are being changed; please try again.")


def unlink(storage: Any, utility: str, account_no: str) -> bool:
    """Unlink an account; return whether it was linked. Raises :class:`Busy` if every attempt lost a race."""
    for _ in range(MAX_ATTEMPTS):
        item = storage.get_item(ACCOUNTS_KEY)
        entries = _valid_entries(item.value if item else None)
        kept = [e for e in entries if not (e["utility"] == utility and e["account_no"] == account_no)]
        if item is None or len(kept) == len(entries):
            return False
        if storage.compare_and_set(ACCOUNTS_KEY, kept, version=item.version):
            return True
    raise Busy("账户正在更新，请稍后再试。", "Your accounts are being changed; please try again.")


def masked(account_no: str) -> str:
    """Return an account number with all but its last four digits hidden, for storefront tiles."""
    return "•••• " + account_no[-4:]
