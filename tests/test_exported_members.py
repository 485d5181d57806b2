"""Each public module's ``__all__`` is exactly its public namespace (as httpx checks its own).

A name a public module defines or imports without a leading underscore is exported, and listed in
``__all__``; a name in ``__all__`` exists.  Submodules of a package are not members.
"""

from __future__ import annotations

import importlib
import types

import pytest

PUBLIC = [
    "mediation",
    "mediation.audit",
    "mediation.commands",
    "mediation.stats",
    "mediation.stores",
    "mediation.testing",
    "mediation.web",
]
#: dunder members a module may export on purpose
DUNDERS = {"__version__"}


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_the_public_namespace(name: str) -> None:
    module = importlib.import_module(name)
    members = {
        member
        for member, value in vars(module).items()
        if (not member.startswith("_") or member in DUNDERS)
        # a submodule is a member only when exported
        and not (
            isinstance(value, types.ModuleType)
            and value.__name__.startswith(f"{name}.")
            and member not in module.__all__
        )
    }
    # names a module provides on first use (optional drivers, hypothesis) are members too
    lazy = {n for n in module.__all__ if n not in vars(module)}
    for member in lazy:
        assert getattr(module, member) is not None, member
    assert sorted(module.__all__) == sorted(members | lazy)
    assert len(set(module.__all__)) == len(module.__all__)
