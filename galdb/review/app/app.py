"""The review app (Textual): one galaxy at a time, its prediction, its look-alikes, and keys
that record decisions through :class:`galdb.review.session.ReviewSession`.

Images are drawn by ``textual-image``: the terminal graphics protocol where the terminal has
one, coloured half-cell blocks everywhere else (so it works over ssh and headless), with the
same stretch as the PNG grids (:func:`galdb.search.grid.tile`).
"""

from __future__ import annotations

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Input, Static

from galdb.review.queue import Item
from galdb.review.session import ReviewSession
from galdb.search.grid import tile

RENEW_SECONDS = 60


def image_widget_class():
    """The terminal's graphics protocol (kitty's, or sixel) where it has one, else coloured
    half-cell blocks, which every terminal (and ssh, and a headless test) can show."""
    from textual_image.renderable import Image as detected
    from textual_image.renderable.sixel import Image as sixel_renderable
    from textual_image.renderable.tgp import Image as tgp_renderable
    from textual_image.widget import HalfcellImage, Image

    if detected in (tgp_renderable, sixel_renderable):
        return Image
    return HalfcellImage


class FlagScreen(ModalScreen[tuple[str, str] | None]):
    """Ask why a galaxy is flagged (a/i/u) and an optional note."""

    BINDINGS = [
        Binding("a", "reason('artefact')", "artefact"),
        Binding("i", "reason('interesting')", "interesting"),
        Binding("u", "reason('unsure')", "unsure"),
        Binding("escape", "dismiss(None)", "cancel"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="flag"):
            yield Static("Flag as: [b]a[/]rtefact, [b]i[/]nteresting, [b]u[/]nsure (Esc cancels)")
            yield Static("", id="flag-reason")
            # disabled (unfocusable) until a reason key is pressed, so a/i/u are not typed
            yield Input(placeholder="note (optional), Enter to save", id="flag-note", disabled=True)

    def action_reason(self, reason: str) -> None:
        self.reason = reason
        self.query_one("#flag-reason", Static).update(f"reason: {reason}")
        note = self.query_one("#flag-note", Input)
        note.disabled = False
        note.focus()

    @on(Input.Submitted, "#flag-note")
    def submitted(self, event: Input.Submitted) -> None:
        if self.reason is not None:
            self.dismiss((self.reason, event.value))


class ValueScreen(ModalScreen[float | None]):
    """A regression answer: type the value, Enter."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, first: str) -> None:
        super().__init__()
        self.first = first

    def compose(self) -> ComposeResult:
        yield Input(value=self.first, placeholder="value, Enter to save", id="value")

    @on(Input.Submitted, "#value")
    def submitted(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(float(event.value))
        except ValueError:
            self.notify(f"{event.value!r} is not a number", severity="error")


HELP = """[b]Keys[/b]
  1-9 or a class's initial   label the galaxy as that class (regression: type a number)
  Enter                      accept the prediction
  f                          flag (artefact, interesting, unsure; with a note)
  s                          skip
  u                          undo your last decision (the galaxy comes back)
  n                          more neighbours
  ?                          this help
  q                          quit (your leases go back to the queue)"""


class ReviewApp(App):
    """``galdb review``: decisions on one galaxy at a time."""

    TITLE = "galdb review"
    CSS = """
    #main { height: 1fr; }
    #cutout { width: 44; height: 22; }
    #info { width: 1fr; padding: 0 1; }
    #neighbours { height: 13; overflow-x: auto; }
    .neighbour { width: 22; height: 12; }
    .neighbour-image { width: 20; height: 9; }
    .neighbour Static { height: 2; }
    #status { height: 2; background: $panel; padding: 0 1; }
    #flag { width: 70; height: auto; border: thick $accent; background: $surface; }
    """
    BINDINGS = [
        Binding("enter", "accept", "accept"),
        Binding("f", "flag", "flag"),
        Binding("s", "skip", "skip"),
        Binding("u", "undo", "undo"),
        Binding("n", "more_neighbours", "more neighbours"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_review", "quit"),
    ]

    def __init__(
        self, session: ReviewSession, *, show: list[str] | None = None, image_widget=None
    ) -> None:
        super().__init__()
        self.session = session
        self.show = show or []
        self.item: Item | None = None
        self.n_neighbours = 6
        self.keys = session.task.kind_spec.answer_keys()
        self.image_widget = image_widget or image_widget_class()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield self.image_widget(id="cutout")
            yield VerticalScroll(Static("", id="details"), id="info")
        yield Horizontal(id="neighbours")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = (
            f"{self.session.task.name} · {self.session.reviewer} · {self.session.strategy}"
        )
        self.set_interval(RENEW_SECONDS, self.session.renew)
        self.advance()

    # showing

    def advance(self) -> None:
        self.item = self.session.next_item()
        self.render_item()

    def render_item(self) -> None:
        details = self.query_one("#details", Static)
        if self.item is None:
            details.update(
                "[b]The queue is empty[/b] for this strategy and these filters. q quits."
            )
            self.query_one("#cutout").image = None
            self.query_one("#neighbours", Horizontal).remove_children()
            self.update_status()
            return
        item = self.item
        ctx = self.session.context(item)
        self.query_one("#cutout").image = tile(ctx.pixels)
        position = (
            f"ra {item.ra:.6f}  dec {item.dec:+.6f}" if item.ra is not None else "no position"
        )
        # catalog text is shown as it is: escape anything that would read as markup
        shown = [escape(f"{c} = {ctx.props[c]}") for c in self.show if c in ctx.props]
        labels = [escape(f"{src}: {lab}") for src, lab in ctx.labels.items()] or ["none"]
        details.update(
            "\n".join(
                [
                    f"[b]{escape(item.source_id)}[/b]  ({escape(item.release)}, "
                    f"galaxy {item.galaxy_id})",
                    position,
                    *shown,
                    "",
                    f"[b]head version {item.head_version}[/b]",
                    escape(self.session.task.kind_spec.prediction_text(item, self.keys)),
                    "",
                    "labels: " + "; ".join(labels),
                ]
            )
        )
        self.render_neighbours()
        self.update_status()

    def render_neighbours(self) -> None:
        strip = self.query_one("#neighbours", Horizontal)
        strip.remove_children()
        if self.item is None:
            return
        for n in self.session.neighbours(self.item, self.n_neighbours):
            image = self.image_widget(tile(n.pixels), classes="neighbour-image")
            caption = Static(
                f"{n.source_id[:20]}\n{n.label or '—'} {n.similarity:.2f}", markup=False
            )
            strip.mount(Vertical(image, caption, classes="neighbour"))

    def update_status(self) -> None:
        s = self.session.status()
        metrics = "  ".join(f"{k} {v:.3f}" for k, v in s["metrics"].items())
        self.query_one("#status", Static).update(
            f"decisions {s['decisions']} · corrections {s['toward_retrain']}/{s['threshold']} "
            f"toward retrain · version {s['version']}  {metrics}"
        )

    # deciding

    def decide(self, action: str, **kw) -> None:
        if self.item is None:
            return
        d = self.session.decide(self.item, action, **kw)
        if d.retrain_job:
            self.notify(f"threshold reached: retrain job {d.retrain_job} queued")
        self.advance()

    def on_key(self, event) -> None:
        if self.item is None or isinstance(self.screen, ModalScreen):
            return
        key = event.character or ""
        if key in self.keys:
            event.stop()
            self.decide("label", answer=self.keys[key])
        elif self.session.task.kind_spec.typed_answer_starts(key):
            event.stop()
            self.push_screen(ValueScreen(key), self._value_chosen)

    def _value_chosen(self, value: float | None) -> None:
        if value is not None:
            self.decide("label", answer=value)

    def action_accept(self) -> None:
        self.decide("accept")

    def action_skip(self) -> None:
        self.decide("skip")

    def action_flag(self) -> None:
        if self.item is not None:
            self.push_screen(FlagScreen(), self._flag_chosen)

    def _flag_chosen(self, chosen: tuple[str, str] | None) -> None:
        if chosen is not None:
            self.decide("flag", flag_reason=chosen[0], note=chosen[1])

    def action_undo(self) -> None:
        back = self.session.undo()
        if back is None:
            self.notify("nothing to undo")
            return
        if self.item is not None:
            self.session.put_back(self.item)
        self.item = back
        self.render_item()

    def action_more_neighbours(self) -> None:
        self.n_neighbours += 6
        self.render_neighbours()

    def action_help(self) -> None:
        legend = ", ".join(f"{k}={c}" for k, c in self.keys.items())
        self.notify(HELP + (f"\n\nclasses: {legend}" if legend else ""), timeout=15)

    def action_quit_review(self) -> None:
        self.session.close()
        self.exit()
