"""Modal dialogs: confirm, error, a one-line input, and the keyboard help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("y", "confirm", "yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(shown(self.question), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes", variant="error", id="yes")
                yield Button("No", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class ErrorDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "close")]

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__()
        self.message, self.title_text = message, title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
            yield Label(self.title_text, classes="title")
            yield Label(shown(self.message), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class InputDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, prompt: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.prompt, self.value, self.placeholder = prompt, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt, classes="question")
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")
            with Horizontal(classes="buttons"):
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.query_one(Input).value.strip() or None if event.button.id == "ok" else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


HELP = """\
# xlbench — keys

| where | key | does |
|---|---|---|
| everywhere | `?` | this help |
| | `ctrl+p` | command palette (screens, runs) |
| | `r` `m` `d` `w` `n` | runs · models · datasets · sweeps · new run |
| | `escape` | back |
| | `q` | quit (workers keep running) |
| runs | `enter` | open the run under the cursor |
| | `space` | select / unselect (for compare) |
| | `c` | compare the selected runs |
| | `/` | filter by text; `s` cycles the sort |
| run | `x` | cancel (asks first) · `u` resume · `e` re-evaluate · `o` export |
| | `l` | show / hide the learning rate |
| | `1`–`5` | loss · heatmap · bias · config · events tabs |
| | `[` `]` | previous / next dataset; `t` cycles the heatmap metric |
| compare | `1`–`4` | table · loss curves · Δ heatmap · config differences |
| sweep | `1`–`3` | curves (mean, 95 % CI, seeds, a/b significance) · table · runs |
| | `enter` | on a run: open it; on a table row: compare that point's seeds |

Everything you see is read from the database; runs started elsewhere (`xlbench run --headless`
over SSH, `xlbench queue`) appear and update live. The app never trains or evaluates in its own
process: it writes a run row and starts an `xlbench worker` process.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)


def shown(message):
    """A dialog's message as inert text (it may quote a stored name or an imported record)."""
    from rich.text import Text

    from xlbench.text import MESSAGE_LIMIT, inert

    return message if isinstance(message, Text) else Text(inert(message, limit=MESSAGE_LIMIT, newlines=True))
