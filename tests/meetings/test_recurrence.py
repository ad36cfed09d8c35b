"""Recurrence in the meeting's own zone: pure unit tests, with `now` passed in (no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wg_api.meetings.recurrence import (
    HORIZON,
    MAX_OCCURRENCES,
    RecurrenceError,
    expand,
    parse_rule,
)

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def instants(rule: str, start: str, zone: str) -> list[str]:
    found = expand(parse_rule(rule), local(start), zone, now=NOW)
    return [o.starts_at.strftime("%Y-%m-%dT%H:%MZ") for o in found]


def walls(rule: str, start: str, zone: str) -> list[str]:
    found = expand(parse_rule(rule), local(start), zone, now=NOW)
    return [o.start_local.strftime("%Y-%m-%dT%H:%M") for o in found]


def test_hong_kong_quarterly_stays_at_ten_local_with_no_dst():
    assert instants("FREQ=MONTHLY;INTERVAL=3;COUNT=4", "2027-03-18T10:00", "Asia/Hong_Kong") == [
        "2027-03-18T02:00Z",
        "2027-06-18T02:00Z",
        "2027-09-18T02:00Z",
        "2027-12-18T02:00Z",
    ]


def test_stockholm_keeps_nine_local_across_both_dst_changes():
    # Summer time 2027: from 28 March to 31 October.
    rule = "FREQ=WEEKLY;BYDAY=MO;UNTIL=20271110T000000Z"
    got = dict(
        zip(
            walls(rule, "2027-03-22T09:00", "Europe/Stockholm"),
            instants(rule, "2027-03-22T09:00", "Europe/Stockholm"),
            strict=True,
        )
    )
    assert set(w[11:] for w in got) == {"09:00"}
    assert got["2027-03-22T09:00"] == "2027-03-22T08:00Z"
    assert got["2027-03-29T09:00"] == "2027-03-29T07:00Z"
    assert got["2027-10-25T09:00"] == "2027-10-25T07:00Z"
    assert got["2027-11-01T09:00"] == "2027-11-01T08:00Z"
    assert got["2027-11-08T09:00"] == "2027-11-08T08:00Z"


def test_new_york_gap_moves_forward_and_overlap_takes_the_first_instant():
    # 14 March 2027 02:00 -> 03:00 (gap); 7 November 2027 02:00 -> 01:00 (overlap).
    spring = expand(
        parse_rule("FREQ=DAILY;COUNT=3"), local("2027-03-13T02:30"), "America/New_York", now=NOW
    )
    assert [o.start_local.strftime("%d %H:%M") for o in spring] == [
        "13 02:30",
        "14 03:30",
        "15 02:30",
    ]
    assert [o.starts_at.strftime("%d %H:%MZ") for o in spring] == [
        "13 07:30Z",
        "14 07:30Z",
        "15 06:30Z",
    ]
    autumn = instants("FREQ=DAILY;COUNT=3", "2027-11-06T01:30", "America/New_York")
    # 01:30 on the 7th happens twice: EDT (05:30Z) first, then EST (06:30Z); the first wins.
    assert autumn == ["2027-11-06T05:30Z", "2027-11-07T05:30Z", "2027-11-08T06:30Z"]


def test_a_start_in_a_dst_gap_is_refused():
    with pytest.raises(RecurrenceError) as caught:
        expand(
            parse_rule("FREQ=DAILY;COUNT=2"), local("2027-03-14T02:30"), "America/New_York", now=NOW
        )
    assert caught.value.field == "start_local"
    with pytest.raises(RecurrenceError):
        expand(
            parse_rule("FREQ=YEARLY;COUNT=2"),
            local("2027-03-28T02:15"),
            "Europe/Stockholm",
            now=NOW,
        )


def test_monthly_on_the_31st_skips_months_without_one():
    assert walls("FREQ=MONTHLY;COUNT=5", "2027-01-31T10:00", "Asia/Hong_Kong") == [
        "2027-01-31T10:00",
        "2027-03-31T10:00",
        "2027-05-31T10:00",
        "2027-07-31T10:00",
        "2027-08-31T10:00",
    ]


def test_second_thursday_every_quarter():
    assert walls(
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=2TH;COUNT=4", "2027-01-14T10:00", "Asia/Hong_Kong"
    ) == [
        "2027-01-14T10:00",
        "2027-04-08T10:00",
        "2027-07-08T10:00",
        "2027-10-14T10:00",
    ]


def test_until_is_an_instant_in_utc_and_inclusive():
    assert (
        len(instants("FREQ=WEEKLY;UNTIL=20270315T020000Z", "2027-03-01T10:00", "Asia/Hong_Kong"))
        == 3
    )
    assert (
        len(instants("FREQ=WEEKLY;UNTIL=20270315T015959Z", "2027-03-01T10:00", "Asia/Hong_Kong"))
        == 2
    )
    for until in ("20270315T020000", "20270315"):
        with pytest.raises(RecurrenceError) as caught:
            parse_rule(f"FREQ=WEEKLY;UNTIL={until}")
        assert caught.value.field == "rrule"


def next_thursday(weeks_ahead: int, now: datetime) -> datetime:
    """10:00 on the first Thursday at least `weeks_ahead` weeks after `now` (wall time)."""
    day = (now + timedelta(weeks=weeks_ahead)).date()
    day += timedelta(days=(3 - day.weekday()) % 7)
    return datetime.combine(day, datetime.min.time()).replace(hour=10)


def test_the_start_must_be_the_first_occurrence():
    now = datetime.now(UTC)
    thursday = next_thursday(4, now)
    assert thursday.weekday() == 3
    with pytest.raises(RecurrenceError) as caught:
        expand(parse_rule("FREQ=WEEKLY;BYDAY=WE;COUNT=3"), thursday, "Asia/Hong_Kong", now=now)
    assert caught.value.field == "start_local"
    found = expand(parse_rule("FREQ=WEEKLY;BYDAY=TH;COUNT=3"), thursday, "Asia/Hong_Kong", now=now)
    assert [o.start_local for o in found] == [thursday + timedelta(weeks=w) for w in range(3)]
    # An UNTIL before the start leaves no occurrence at all.
    before = (thursday - timedelta(days=30)).strftime("%Y%m%dT000000Z")
    with pytest.raises(RecurrenceError):
        expand(parse_rule(f"FREQ=WEEKLY;UNTIL={before}"), thursday, "Asia/Hong_Kong", now=now)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;COUNT=3",
        "FREQ=SECONDLY",
        "INTERVAL=2",
        "FREQ=WEEKLY;BYHOUR=10",
        "FREQ=WEEKLY;COUNT=0",
        "FREQ=WEEKLY;COUNT=two",
        f"FREQ=WEEKLY;COUNT={MAX_OCCURRENCES + 1}",
        "FREQ=WEEKLY;COUNT=2;UNTIL=20280101T000000Z",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=WEEKLY;INTERVAL=-1",
        "FREQ=WEEKLY;FREQ=DAILY",
        "nonsense",
    ],
)
def test_bad_rules_name_the_rrule(rule):
    with pytest.raises(RecurrenceError) as caught:
        parse_rule(rule)
    assert caught.value.field == "rrule"


def test_unbounded_rules_reach_two_years_ahead_and_the_limit_holds():
    found = expand(parse_rule("FREQ=WEEKLY"), local("2027-01-04T10:00"), "Asia/Hong_Kong", now=NOW)
    assert found[-1].starts_at < NOW + HORIZON <= found[-1].starts_at + timedelta(weeks=1)
    later = expand(
        parse_rule("FREQ=WEEKLY"),
        local("2027-01-04T10:00"),
        "Asia/Hong_Kong",
        now=NOW + timedelta(days=30),
    )
    assert later[: len(found)] == found
    assert len(later) > len(found)
    with pytest.raises(RecurrenceError) as caught:
        expand(parse_rule("FREQ=DAILY"), local("2027-01-04T10:00"), "Asia/Hong_Kong", now=NOW)
    assert caught.value.field == "rrule"
    with pytest.raises(RecurrenceError):
        expand(
            parse_rule("FREQ=DAILY;UNTIL=20290101T000000Z"),
            local("2027-01-04T10:00"),
            "UTC",
            now=NOW,
        )


def test_a_split_series_gives_the_same_occurrences():
    zone = "Europe/Stockholm"
    for text in ("FREQ=WEEKLY;COUNT=8", "FREQ=WEEKLY;UNTIL=20270520T000000Z", "FREQ=WEEKLY"):
        rule = parse_rule(text)
        whole = expand(rule, local("2027-03-15T09:00"), zone, now=NOW)
        cut = whole[3]
        if rule.count is not None:
            before_rule, after_rule = rule.with_count(3), rule.with_count(rule.count - 3)
        else:
            before_rule, after_rule = rule.with_until(cut.starts_at - timedelta(seconds=1)), rule
        before = expand(before_rule, whole[0].start_local, zone, now=NOW)
        after = expand(after_rule, cut.start_local, zone, now=NOW)
        assert [o.starts_at for o in before + after] == [o.starts_at for o in whole]
        assert after_rule.until == rule.until


def test_rule_text_round_trips_in_a_fixed_order():
    rule = parse_rule("count=4;byday=2th;interval=3;freq=monthly")
    assert rule.text() == "FREQ=MONTHLY;INTERVAL=3;BYDAY=2TH;COUNT=4"
    assert parse_rule(rule.text()) == rule
    assert (
        parse_rule("FREQ=WEEKLY;UNTIL=20271231T235959Z").text()
        == "FREQ=WEEKLY;UNTIL=20271231T235959Z"
    )
