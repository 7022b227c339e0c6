"""deploy/config validates against schemas/config, hangs together, and its templates
keep the reporter-protection rules (no allegation text or names in SMS)."""
import hashlib
import re

import pytest

from helpers import CONFIG, SCHEMAS, INBOUND_TYPES, INTERNAL_TYPES, load, rel, validator

FILES = ["directory", "rules", "sla", "clients", "notify"]
CALENDARS = sorted((CONFIG / "calendar").glob("*.json"))

SHIPPED_SLA = {
    "accept": {"working_days": 1},
    "resolve": {"urgent": {"working_days": 2}, "high": {"working_days": 5},
                "normal": {"working_days": 15}, "low": {"days": 30}},
    "warn_before": {"working_days": 2},
    "escalate": [{"level": 3, "after_overdue": {"working_days": 5}},
                 {"level": 4, "after_overdue": {"working_days": 10}}],
}

SMS_VARIABLES = {"case_id", "accept_by", "due_at", "unit_name", "level", "warn_at", "asked",
                 "deadline"}
EMAIL_VARIABLES = SMS_VARIABLES | {"title", "category", "severity", "region", "officer_name"}


def errors(schema, document):
    return [f"{list(e.absolute_path)}: {e.message}" for e in
            validator(SCHEMAS / "config" / f"{schema}.json").iter_errors(document)]


@pytest.mark.parametrize("name", FILES)
def test_config_file_validates(name):
    assert not errors(name, load(CONFIG / f"{name}.json"))


@pytest.mark.parametrize("path", CALENDARS, ids=[rel(p) for p in CALENDARS])
def test_calendar_validates(path):
    cal = load(path)
    assert not errors("calendar", cal)
    assert path.stem == str(cal["year"]), "calendar/<year>.json holds that year"
    dates = [d["date"] for d in cal["days"]]
    assert all(d.startswith(f"{cal['year']}-") for d in dates)
    assert len(dates) == len(set(dates)), "a date is listed twice"


def test_calendar_schema_accepts_upstream_files():
    """holiday-cn files carry $schema and $id; they must validate as published."""
    upstream = {"$schema": "https://raw.githubusercontent.com/NateScarlet/holiday-cn/master/schema.json",
                "$id": "https://raw.githubusercontent.com/NateScarlet/holiday-cn/master/2024.json",
                "year": 2024, "papers": [], "days": []}
    assert not errors("calendar", upstream)
    assert errors("calendar", {**upstream, "days": [{"name": "元旦", "date": "2024-1-1", "isOffDay": True}]})
    assert errors("calendar", {**upstream, "days": [{"name": "元旦", "date": "2024-02-30", "isOffDay": True}]})


def test_directory_references():
    d = load(CONFIG / "directory.json")
    units = [u["id"] for u in d["units"]]
    officers = {o["id"]: o for o in d["officers"]}
    assert len(units) == len(set(units)), "duplicate unit id"
    assert len(officers) == len(d["officers"]), "duplicate officer id"
    for u in d["units"]:
        if u.get("head"):
            assert u["head"] in officers, f"{u['id']}: head {u['head']} unknown"
            assert officers[u["head"]]["unit"] == u["id"], f"{u['id']}: head from another unit"
        if u.get("parent"):
            assert u["parent"] in units
    for o in d["officers"]:
        assert o["unit"] in units, f"{o['id']}: unit {o['unit']} unknown"
        for c in o.get("conflicts", []):
            assert c in units, f"{o['id']}: conflict {c} unknown"
            assert c != o["unit"], f"{o['id']}: own unit is implied, not a conflict"


def test_rules_reference_units():
    units = {u["id"] for u in load(CONFIG / "directory.json")["units"]}
    rules = load(CONFIG / "rules.json")
    assert rules["fallback_unit"] in units
    ids = [r["id"] for r in rules["rules"]]
    assert len(ids) == len(set(ids)) and "fallback" not in ids
    for r in rules["rules"]:
        assert r["unit"] in units, r["id"]
        for u in r.get("match", {}).get("subject_unit", []):
            assert u in units, r["id"]


def test_every_handling_unit_has_an_active_handler():
    d = load(CONFIG / "directory.json")
    rules = load(CONFIG / "rules.json")
    targets = {r["unit"] for r in rules["rules"]} | {rules["fallback_unit"]}
    for unit in targets:
        assert any(o["unit"] == unit and o.get("active", True) and "handler" in o["roles"]
                   for o in d["officers"]), f"{unit} has no active handler"


def test_sla_is_the_shipped_default():
    assert load(CONFIG / "sla.json") == SHIPPED_SLA
    assert not errors("sla", SHIPPED_SLA)


@pytest.mark.parametrize("bad", [
    {"accept": {"working_days": 0}},
    {"accept": {"working_days": 1, "days": 1}},
    {"accept": {"hours": 8}},
    {"escalate": [{"level": 2, "after_overdue": {"working_days": 5}}]},
    {"resolve": {"urgent": {"working_days": 2}}},
])
def test_sla_schema_rejects(bad):
    assert errors("sla", {**SHIPPED_SLA, **bad})


def test_clients_tokens_match_readme():
    """The README documents each demo token; clients.json holds its SHA-256 only."""
    readme = (CONFIG / "README.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `([\w-]+)` \| `(dub_demo_\w+)` \|", readme, re.M))
    clients = load(CONFIG / "clients.json")["clients"]
    assert {c["id"] for c in clients} == set(documented)
    for c in clients:
        assert hashlib.sha256(documented[c["id"]].encode()).hexdigest() == c["token_sha256"]
        assert "token" not in c


@pytest.mark.parametrize("bad", [
    {"id": "x", "token_sha256": "AB" * 32, "scopes": ["cases:read"]},
    {"id": "x", "token_sha256": "ab" * 31, "scopes": ["cases:read"]},
    {"id": "x", "token_sha256": "ab" * 32, "scopes": ["events:write"]},
    {"id": "x", "token_sha256": "ab" * 32, "scopes": ["events:write"], "sources": []},
    {"id": "x", "token_sha256": "ab" * 32, "scopes": ["admin"]},
    {"id": "x", "token": "secret", "token_sha256": "ab" * 32, "scopes": ["cases:read"]},
])
def test_clients_schema_rejects(bad):
    assert errors("clients", {"clients": [bad]})


TEMPLATES = sorted((CONFIG / "templates").glob("*.txt"))


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_template(path):
    m = re.fullmatch(r"(duban\.[a-z_.]+)\.(sms|email)\.txt", path.name)
    assert m, "templates are named <event type>.<sms|email>.txt"
    event_type, channel = m.groups()
    assert event_type in INBOUND_TYPES + INTERNAL_TYPES, f"unknown event type {event_type}"
    text = path.read_text(encoding="utf-8")
    names = set(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", text))
    assert "case_id" in names, "every message names the case"
    leftover = re.sub(r"\{\{\s*[a-z_]+\s*\}\}", "", text)
    assert "{{" not in leftover and "}}" not in leftover, "malformed placeholder"
    if channel == "sms":
        assert names <= SMS_VARIABLES, f"SMS may not use {sorted(names - SMS_VARIABLES)}"
        assert text.startswith("【督办】"), "SMS starts with the 【督办】 signature"
        assert "\n" not in text.rstrip("\n"), "an SMS is one line"
        # Filled in as notification does (28-character case id, "2026-11-21 23:59"
        # times, other values 16 characters) it stays within two concatenated parts.
        fill = {"case_id": "DB" + "0" * 26}
        filled = re.sub(r"\{\{\s*([a-z_]+)\s*\}\}",
                        lambda m: fill.get(m.group(1), "x" * 16), text.strip())
        assert len(filled) <= 2 * 67, f"{len(filled)} characters: more than two SMS parts"
    else:
        assert names <= EMAIL_VARIABLES, f"email may not use {sorted(names - EMAIL_VARIABLES)}"
        first, blank = text.split("\n")[:2]
        assert first.startswith("Subject: ") and blank == "", "Subject: line, then a blank line"
        assert "title" not in re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", first), \
            "keep the allegation out of the subject line"


def test_required_templates_exist():
    for name in ["duban.case.assigned.sms.txt", "duban.case.assigned.email.txt",
                 "duban.case.received.sms.txt"]:
        assert (CONFIG / "templates" / name).is_file(), name
