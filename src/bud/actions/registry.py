"""The registry of actions: built-ins plus third-party ones (entry points ``bud.actions``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from bud.actions.base import Action
from bud.errors import NotFoundError

log = logging.getLogger("bud.actions")


class ActionRegistry:
    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._actions: dict[str, Action] = {}
        for a in actions:
            self.register(a)

    def register(self, action: Action) -> None:
        if not isinstance(action, Action):
            raise TypeError(f"{action!r} is not an Action (declare it with @bud.actions.action)")
        self._actions[action.name] = action

    def unregister(self, name: str) -> None:
        """Forget an action (a plugin removed); pipelines that use it then fail their step."""
        self._actions.pop(name, None)

    def get(self, name: str) -> Action:
        try:
            return self._actions[name]
        except KeyError:
            raise NotFoundError(
                f"unknown action {name!r}; known actions: {', '.join(sorted(self._actions))}",
                details={"action": name},
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def names(self) -> list[str]:
        return sorted(self._actions)

    def all(self) -> list[Action]:
        return [self._actions[n] for n in self.names()]

    def load_entry_points(self, group: str = "bud.actions") -> None:
        for ep in entry_points(group=group):
            try:
                obj = ep.load()
            except Exception:
                log.exception("could not load action entry point %s", ep.name)
                continue
            for a in obj if isinstance(obj, (list, tuple)) else [obj]:
                self.register(a)


def default_registry(*, entry_points_group: str | None = "bud.actions") -> ActionRegistry:
    from bud.actions.builtin import BUILTIN_ACTIONS

    reg = ActionRegistry(BUILTIN_ACTIONS)
    if entry_points_group:
        reg.load_entry_points(entry_points_group)
    return reg
