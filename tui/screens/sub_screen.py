"""The base of every screen opened over the Tavern (Quest board, Vault, Guild…).

Its footer lists the screen's own keys, then only the app's keys that matter everywhere
(pause, `?`). The app's other keys (g, v, o, q…) still work there and stay in `?` and the
command palette; listed too, they pushed the screen's own keys off an 80-column footer.
A key the screen names (Enter: Edit) stays in its footer when a focused table handles it.
"""

from __future__ import annotations

from dataclasses import replace

from textual.binding import ActiveBinding, Binding
from textual.screen import Screen


class SubScreen(Screen[None]):
    APP_KEYS_IN_FOOTER: tuple[str, ...] = ("space", "question_mark")
    """The app's keys this screen's footer lists after its own."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        shown: dict[str, ActiveBinding] = {}
        for key, active in super().active_bindings.items():
            if active.node is self.app and active.binding.show and key not in self.APP_KEYS_IN_FOOTER:
                active = active._replace(binding=replace(active.binding, show=False))
            shown[key] = active
        listed = {a.binding.action for a in shown.values() if a.node is self and a.binding.show}
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or not binding.show or binding.action in listed:
                continue
            for key in (k.strip() for k in binding.key.split(",")):
                handler = shown.get(key)
                # A focused table handles Enter itself (unlisted): the screen's word for it
                # (Edit, Open…) is what the footer should say.
                if handler is not None and handler.node not in (self, self.app) and not handler.binding.show:
                    shown[key] = ActiveBinding(
                        self, replace(binding, key=key), handler.enabled, binding.tooltip
                    )
        return shown
