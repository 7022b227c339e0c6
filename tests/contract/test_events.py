"""Sample events validate, or fail for the stated reason, against schemas/.

samples/<type>/good-*.json must validate against schemas/events/<type>.json (or
schemas/cloudevent.json for samples/cloudevent). samples/<type>/bad-<keyword>-*.json must
fail, and one of the failures must come from <keyword>, so a bad sample cannot pass by
failing for some unintended reason. The C validator's tests can reuse the same files."""
import json
import pathlib
import re

import pytest

from helpers import (INBOUND_TYPES, INTERNAL_TYPES, ROOT, SAMPLES, SCHEMAS, event_schema,
                     load, validator)

SAMPLE_FILES = sorted(SAMPLES.glob("*/*.json"))


def schema_for(sample):
    kind = sample.parent.name
    return SCHEMAS / "cloudevent.json" if kind == "cloudevent" else event_schema(kind)


def keywords(errors):
    """Every keyword on the path of a failure (propertyNames reports a failed pattern
    under propertyNames), including inside anyOf/oneOf/not branches."""
    out = set()
    for e in errors:
        after_map = False
        for part in e.schema_path:
            if isinstance(part, str) and not after_map:
                out.add(part)
            after_map = part in ("properties", "patternProperties", "definitions") and not after_map
        out |= keywords(e.context or [])
    return out


def test_every_type_has_samples():
    for t in INBOUND_TYPES + INTERNAL_TYPES + ["cloudevent"]:
        names = [p.name for p in (SAMPLES / t).glob("*.json")]
        assert any(n.startswith("good-") for n in names), f"no good sample for {t}"
        if t in INBOUND_TYPES:
            assert sum(n.startswith("bad-") for n in names) >= 3, f"too few bad samples for {t}"


@pytest.mark.parametrize("sample", SAMPLE_FILES,
                         ids=[f"{p.parent.name}/{p.stem}" for p in SAMPLE_FILES])
def test_sample(sample):
    v = validator(schema_for(sample))
    errors = list(v.iter_errors(load(sample)))
    if sample.name.startswith("good-"):
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    else:
        assert sample.name.startswith("bad-"), "sample names start with good- or bad-"
        expected = sample.stem.split("-")[1]
        assert errors, "a bad sample validated"
        assert expected in keywords(errors), (
            f"expected a {expected} failure, got {sorted(keywords(errors))}: "
            f"{[e.message for e in errors]}")


def test_cloudevent_samples_carry_valid_data():
    for sample in sorted((SAMPLES / "cloudevent").glob("good-*.json")):
        event = load(sample)
        if "data" not in event:
            continue
        errors = list(validator(event_schema(event["type"])).iter_errors(event["data"]))
        assert not errors, f"{sample.name}: {[e.message for e in errors]}"


# Length limits count characters (code points), not bytes: Chinese text of the full
# length must pass.
@pytest.mark.parametrize("field,limit", [("title", 200), ("description", 20000)])
def test_text_limits_count_characters(field, limit):
    v = validator(event_schema("duban.problem.reported"))
    base = load(SAMPLES / "duban.problem.reported" / "good-minimal.json")
    assert not list(v.iter_errors({**base, field: "督" * limit}))
    assert [e.validator for e in v.iter_errors({**base, field: "督" * (limit + 1)})] == [
        "maxLength"]


@pytest.mark.parametrize("time,ok", [
    ("2026-11-20T09:00:00+08:00", True),
    ("2026-11-20T01:00:00.123456Z", True),
    ("2026-11-20t01:00:00z", True),
    ("2026-11-20T09:00:00", False),        # no offset
    ("2026-11-20 09:00:00+08:00", False),  # space
    ("2026-02-30T09:00:00+08:00", False),  # no such day
    ("2026-11-20T24:00:00+08:00", False),
    ("2026-11-20T09:00:00+0800", False),
])
def test_time_is_rfc3339(time, ok):
    v = validator(SCHEMAS / "cloudevent.json")
    event = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "time": time}
    assert (not list(v.iter_errors(event))) == ok


def design_example_candidates():
    return [pathlib.Path(p) for p in [ROOT / "DESIGN.md", ROOT / "docs" / "DESIGN.md",
                                      "/work/shared/DESIGN.md"]]


def design_example():
    """The duban.problem.reported example from DESIGN.md, made concrete: the first of
    each 'a|b|c' alternative, and plausible values for the '…' placeholders."""
    for path in design_example_candidates():
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            break
    else:
        pytest.skip("DESIGN.md not found")
    m = re.search(r"`duban\.problem\.reported` data.*?```json\n(.*?)```", text, re.S)
    assert m, "DESIGN.md has no duban.problem.reported example"
    data = json.loads(m.group(1))
    for key in ["kind", "category", "severity"]:
        data[key] = data[key].split("|")[0]
    data["description"] = "群众反映窗口推诿扯皮。"
    fill = {"name": "某人", "position": "窗口负责人", "email": "someone@example.com",
            "uri": "https://files.example/a.jpg", "sha256": "0" * 64}

    def concrete(node):
        if isinstance(node, dict):
            return {k: fill[k] if v == "…" else concrete(v) for k, v in node.items()}
        if isinstance(node, list):
            return [concrete(v) for v in node]
        return node
    return concrete(data)


def test_design_md_example_validates():
    data = design_example()
    errors = list(validator(event_schema("duban.problem.reported")).iter_errors(data))
    assert not errors, [e.message for e in errors]
    # The fixture copy stays in step with DESIGN.md.
    assert data == load(SAMPLES / "duban.problem.reported" / "good-design-example.json")
