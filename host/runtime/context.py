"""The scoped ``ctx`` the host builds for one plugin, branch and (maybe) customer."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from canopy_sdk.errors import NoCustomer, ScopeDenied
from canopy_sdk.types import BranchInfo

from .grants import Grant
from .storage import PluginStorage

audit = logging.getLogger("canopy.audit")

#: Profile fields each profile scope opens.
PROFILE_FIELDS = {
    "profile.basic:read": ("nickname", "avatar", "locale"),
    "profile.phone:read": ("phone",),
}


class HostCustomer:
    """The customer as one plugin sees them: a pairwise subject and granted profile fields."""

    __slots__ = ("subject", "_profile", "_ctx")

    def __init__(self, subject: str, profile: Mapping[str, Any], ctx: "PluginContext") -> None:
        self.subject = subject
        self._profile = profile
        self._ctx = ctx

    def profile(self) -> dict[str, Any]:
        """Return the profile fields the grant allows; needs ``profile.basic:read``."""
        self._ctx.require("profile.basic:read")
        allowed = {f for scope, fields in PROFILE_FIELDS.items() if self._ctx.has_scope(scope) for f in fields}
        return {key: value for key, value in self._profile.items() if key in allowed}

    def __repr__(self) -> str:
        return f"<HostCustomer {self.subject}>"


class NoPayments:
    """``ctx.payments`` of a runtime without the payments package: every call is refused."""

    def __init__(self, plugin_id: str) -> None:
        self._plugin_id = plugin_id

    def _refuse(self, *args: Any, **kwargs: Any):
        raise ScopeDenied("payments:create", "payments are not available in this host", self._plugin_id)

    create_intent = get = refund = _refuse


class PluginContext:
    """What a hook's ``ctx`` is in the host. Satisfies :class:`canopy_sdk.Context`."""

    __slots__ = ("plugin_id", "version", "branch", "locale", "customer", "storage", "scopes", "grant", "_customer_storage",
                 "_payments", "_payments_factory", "_log")

    def __init__(
        self,
        *,
        plugin_id: str,
        branch: BranchInfo,
        version: str = "",
        locale: str,
        grant: Grant,
        storage_factory: Callable[[str], PluginStorage],
        customer_subject: str | None = None,
        customer_profile: Mapping[str, Any] | None = None,
        payments_factory: Callable[["PluginContext"], Any] | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.version = version  #: the plugin version this call runs (a gray release serves two)
        self._payments = None
        self._payments_factory = payments_factory
        self.branch = branch
        self.locale = locale
        self.grant = grant
        self.scopes = grant.scopes
        self.storage = storage_factory("")
        self.customer = (
            HostCustomer(customer_subject, customer_profile or {}, self) if customer_subject is not None else None
        )
        self._customer_storage = storage_factory(customer_subject) if customer_subject is not None else None
        self._log: logging.LoggerAdapter | None = None

    @property
    def log(self) -> logging.LoggerAdapter:
        """The plugin's logger (``canopy.plugin.<id>``), made on first use: a storefront builds a
        context per zone per request, and few calls log."""
        if self._log is None:
            self._log = logging.LoggerAdapter(logging.getLogger(f"canopy.plugin.{self.plugin_id}"), {"plugin": self.plugin_id})
        return self._log

    @property
    def payments(self):
        """Payment intents and refunds for this plugin (made on first use; see ``canopy_sdk.Payments``)."""
        if self._payments is None:
            self._payments = NoPayments(self.plugin_id) if self._payments_factory is None else self._payments_factory(self)
        return self._payments

    @property
    def customer_storage(self) -> PluginStorage:
        """The plugin's store for the current customer; raises :class:`NoCustomer` when anonymous."""
        if self._customer_storage is None:
            raise NoCustomer("customer storage")
        return self._customer_storage

    def has_scope(self, scope: str) -> bool:
        """Return whether ``scope`` is granted for this call."""
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`ScopeDenied` (and audit it) unless ``scope`` is granted."""
        if scope in self.scopes:
            return
        reason = self.grant.explain(scope)
        audit.warning(
            "scope denied",
            extra={
                "event": "scope.denied",
                "plugin": self.plugin_id,
                "scope": scope,
                "reason": reason,
                "branch": self.branch.code,
                "customer": self.customer.subject if self.customer else None,
            },
        )
        raise ScopeDenied(scope, reason, self.plugin_id)
