"""The desired-state plan: the fewest commands, and nothing again while nothing changed."""

from __future__ import annotations

from mdmserver.profiles.desired import Known, plan

MANAGED = {"a", "b", "old"}


def test_installs_what_is_missing_or_outdated_and_removes_what_is_unassigned():
    known = {"b": Known(installed_uuid="B1", status="installed"), "old": Known("O1")}
    result = plan({"a": "A1", "b": "B2"}, known, MANAGED)
    assert (result.install, result.remove) == (["a", "b"], ["old"])


def test_nothing_when_in_line():
    known = {"a": Known(installed_uuid="A1", status="installed")}
    assert not plan({"a": "A1"}, known, MANAGED)


def test_pending_commands_count_as_done():
    known = {
        "a": Known(action="install", sent_uuid="A1", queued=True),
        "old": Known(installed_uuid="O1", action="remove", queued=True),
    }
    assert not plan({"a": "A1"}, known, MANAGED)


def test_a_refused_install_is_not_retried_until_the_profile_changes():
    known = {"a": Known(action="install", sent_uuid="A1", status="failed")}
    assert not plan({"a": "A1"}, known, MANAGED)
    assert plan({"a": "A2"}, known, MANAGED).install == ["a"]


def test_unmanaged_and_protected_profiles_are_never_touched():
    known = {"mdm": Known(installed_uuid="M"), "user": Known(installed_uuid="U")}
    assert not plan({}, known, {"a"})
    assert not plan({"mdm": "X"}, {}, {"mdm"}, protected={"mdm"})


def test_a_reassigned_profile_with_a_pending_removal_is_installed_again():
    known = {"a": Known(installed_uuid="A1", action="remove", queued=True)}
    assert plan({"a": "A1"}, known, MANAGED).install == ["a"]
