"""The change log's notifications: which ones let a replica skip reading the log
(:func:`coldbrew.store.changes.own_changes_through`); the log itself is exercised by the
replica tests (tests/serve/test_service_replicas.py) on a real PostgreSQL."""

from __future__ import annotations

from coldbrew.store.changes import own_changes_through

ME = "host-12-a1b2c3"


def test_its_own_changes_right_after_the_last_seen_count_as_seen() -> None:
    assert own_changes_through([f"8 {ME}"], 7, ME) == 8
    assert own_changes_through([f"10 {ME}", f"8 {ME}", f"9 {ME}"], 7, ME) == 10


def test_notifications_already_seen_are_left_out() -> None:
    assert own_changes_through([f"6 {ME}", f"8 {ME}"], 7, ME) == 8


def test_anything_else_means_reading_the_log() -> None:
    assert own_changes_through([], 7, ME) is None  # a poll: nothing notified
    assert own_changes_through([f"7 {ME}"], 7, ME) is None  # nothing new
    assert own_changes_through([f"9 {ME}"], 7, ME) is None  # change 8 not notified yet
    assert own_changes_through([f"8 {ME}", "9 other-replica"], 7, ME) is None
    assert own_changes_through(["8"], 7, ME) is None  # the payload of an older replica
    assert own_changes_through([f"8 {ME}-2"], 7, ME) is None  # a name it merely starts
    assert own_changes_through([f"x8 {ME}"], 7, ME) is None
