"""``coldbrew train``'s flags show the text their TrainConfig field declares (one place)."""

from __future__ import annotations

import argparse
import re

from coldbrew.cli.train import FLAGS, add_parser
from coldbrew.train.config import GROUP_OF, GROUPS, TOP_LEVEL, TrainConfig
from coldbrew.train.optiondocs import parameter_docs

# the flags coldbrew train has taken since before the help was read from the declarations
OLD_FLAGS = {
    "--encoder", "--method", "--towers", "--seed", "--max-steps", "--batch-size",
    "--learning-rate", "--max-seq-length", "--max-pairs", "--history", "--hard-negatives",
    "--fgm-epsilon", "--dapt-steps", "--dapt-items", "--distill-weight", "--distill-teacher",
    "--distill-loss", "--teacher-steps", "--eval-every", "--patience", "--lora-rank", "--augment",
}  # fmt: skip


def _train_parser() -> argparse.ArgumentParser:
    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    parser: argparse.ArgumentParser = sub.choices["train"]
    return parser


def _declared(name: str) -> str:
    cls = GROUPS[GROUP_OF[name]] if name in GROUP_OF else TrainConfig
    return re.sub(r"``([^`]+)``", r"\1", parameter_docs(cls)[name])


def test_every_flagged_option_shows_its_declared_text_under_its_old_flag() -> None:
    options = {*TOP_LEVEL, *GROUP_OF}
    flagged = [a for a in _train_parser()._actions if a.dest in options]
    assert {a.option_strings[0] for a in flagged} == OLD_FLAGS
    assert {a.dest for a in flagged} == {*FLAGS, "augment"}
    for action in flagged:
        assert action.help and action.help == _declared(action.dest), action.dest
        assert action.default is None, action.dest  # unset flags leave the config file's value


def test_the_flags_parse_to_the_declared_types() -> None:
    args = _train_parser().parse_args(
        ["--dataset", "ml-100k", "--out", "m", "--max-steps", "9", "--learning-rate", "0.001",
         "--history", "both", "--augment"]
    )  # fmt: skip
    assert (args.max_steps, args.learning_rate, args.history) == (9, 0.001, "both")
    assert args.augment is True and args.batch_size is None
