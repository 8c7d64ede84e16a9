"""The plugin manager: one per app, frozen once the app has started."""

from __future__ import annotations

from typing import Any

import pluggy
from canopy_sdk import hookspecs as sdk_hookspecs
from canopy_sdk.markers import PROJECT_NAME

from . import host_hookspecs


class RegistrationClosed(RuntimeError):
    """A plugin was registered after the app started."""


class CanopyPluginManager(pluggy.PluginManager):
    """A pluggy manager that refuses registration once :meth:`freeze` has been called."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(sdk_hookspecs)
        self.add_hookspecs(host_hookspecs)
        self._frozen = False

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        if self._frozen:
            raise RegistrationClosed(
                f"cannot register plugin {name or plugin!r}: the plugin manager is frozen once the app "
                "has started. Register plugins in create_app (or with the plugin loaders) before the first request."
            )
        return super().register(plugin, name)

    def freeze(self) -> None:
        """Check every registered implementation against the specs, then close registration."""
        self.check_pending()
        self._frozen = True

    @property
    def frozen(self) -> bool:
        """Whether registration is closed."""
        return self._frozen
