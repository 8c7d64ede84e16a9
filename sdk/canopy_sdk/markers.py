"""The pluggy markers that tie a mini-program to the host's plugin manager."""

import pluggy

#: The pluggy project name shared by the host and every mini-program.
PROJECT_NAME = "canopy"

#: Marks a function in :mod:`canopy_sdk.hookspecs` as an extension point.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Marks a function or method of a mini-program as the implementation of a hook.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
