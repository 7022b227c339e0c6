"""Shared helpers for the contract tests: paths, JSON loading and the outside oracle.

The oracle is Debian's python3-jsonschema (Draft 7). It has no date-time checker of its
own without extra packages, so the three formats our schemas use (date-time, date,
email) are checked here, as RFC 3339 and the draft-07 text define them.
"""
import datetime
import json
import pathlib
import re

from jsonschema import Draft7Validator, FormatChecker

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
CONFIG = ROOT / "deploy" / "config"
SAMPLES = pathlib.Path(__file__).resolve().parent / "samples"

INBOUND_TYPES = [
    "duban.problem.reported",
    "duban.case.accepted",
    "duban.case.progressed",
    "duban.case.extension_requested",
    "duban.case.extension_decided",
    "duban.case.rectified",
    "duban.case.verified",
    "duban.case.returned",
    "duban.case.closed",
    "duban.case.cancelled",
]
INTERNAL_TYPES = [
    "duban.case.received",
    "duban.case.assigned",
    "duban.case.warning",
    "duban.case.overdue",
    "duban.case.escalated",
    "duban.case.deadline_changed",
]

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _valid_date(y, m, d):
    try:
        datetime.date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def is_date_time(value):
    """RFC 3339 section 5.6 date-time; a leap second (60) is allowed."""
    if not isinstance(value, str):
        return True
    m = _DATE_TIME.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s = m.group(1, 2, 3, 4, 5, 6)
    if not _valid_date(y, mo, d) or int(h) > 23 or int(mi) > 59 or int(s) > 60:
        return False
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return False
    return True


def is_date(value):
    if not isinstance(value, str):
        return True
    m = _DATE.match(value)
    return bool(m) and _valid_date(*m.groups())


def format_checker():
    checker = FormatChecker(formats=["email"])
    checker.checks("date-time")(is_date_time)
    checker.checks("date")(is_date)
    return checker


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def validator(schema_path):
    """A Draft 7 validator for the schema file at schema_path, formats asserted."""
    return Draft7Validator(load(schema_path), format_checker=format_checker())


def event_schema(event_type):
    return SCHEMAS / "events" / f"{event_type}.json"


def all_schema_files():
    return sorted(SCHEMAS.rglob("*.json"))


def rel(path):
    return str(pathlib.Path(path).relative_to(ROOT))
