"""What follows from the settings' declarations (:mod:`coldbrew.config.settings`): the
``coldbrew serve`` flags (:func:`add_flags`) and the settings table of docs/service.md
(:func:`settings_table`)."""

from __future__ import annotations

import argparse

from coldbrew.config.settings import all_declared
from coldbrew.live.serving import Declared


def add_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for every setting declared with one, stored under the setting's name; each
    defaults to ``None``, so the environment's value, else the declared default, applies."""
    for setting in all_declared():
        rule = setting.knob
        if rule.flag is None:
            continue
        parser.add_argument(
            rule.flag,
            dest=setting.name,
            type=_kind(setting),
            choices=rule.choices,
            metavar=rule.metavar,
            default=None,
            help=f"{rule.help} (default: {setting.env}, else {shown_default(setting)})".replace(
                "%", "%%"
            ),
        )


def _kind(setting: Declared) -> type:
    return type(setting.default) if type(setting.default) in (int, float) else str


def shown_default(setting: Declared) -> str:
    """A setting's default as the help and the docs show it."""
    if setting.knob.doc_default is not None:
        return setting.knob.doc_default
    if isinstance(setting.default, float):
        return f"{setting.default:g}"
    return str(setting.default)


def settings_table() -> str:
    """The settings as the Markdown table docs/service.md holds: variable, flag, default and
    what it does, one row each."""
    rows = ["| setting | flag | default | what |", "|---|---|---|---|"]
    for setting in all_declared():
        flag = f"`{setting.knob.flag}`" if setting.knob.flag else ""
        default = shown_default(setting)
        if setting.knob.doc_default is None:
            default = f"`{default}`"
        rows.append(f"| `{setting.env}` | {flag} | {default} | {setting.knob.help} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    """Print the table (``python -m coldbrew.config.table``), to paste into docs/service.md."""
    print(settings_table(), end="")


if __name__ == "__main__":
    main()
