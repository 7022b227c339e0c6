"""Every schema in schemas/ is a draft-07 schema our C validator can run: valid per the
metaschema, only supported keywords and formats, $ref only within the same document,
patterns that compile, and examples that validate."""
import re

import pytest
from jsonschema import Draft7Validator

from helpers import (INBOUND_TYPES, INTERNAL_TYPES, SCHEMAS, all_schema_files,
                     event_schema, format_checker, load, rel)

DRAFT7 = "http://json-schema.org/draft-07/schema#"

# What the C validator (libs/schema) implements; nothing else may appear in a schema.
ASSERTIONS = {
    "type", "enum", "const", "required", "properties", "additionalProperties",
    "patternProperties", "propertyNames", "minProperties", "maxProperties", "items",
    "additionalItems", "contains", "minItems", "maxItems", "uniqueItems", "minLength",
    "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "pattern", "format", "$ref", "definitions", "allOf", "anyOf", "oneOf",
    "not", "if", "then", "else",
}
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "default", "examples"}
KEYWORDS = ASSERTIONS | ANNOTATIONS
FORMATS = {"date-time", "date", "email"}
TYPES = {"null", "boolean", "object", "array", "number", "string", "integer"}

# Keywords whose value is one schema, a map of schemas, or a list of schemas.
ONE = {"additionalItems", "contains", "additionalProperties", "propertyNames", "not",
       "if", "then", "else"}
MAP = {"properties", "patternProperties", "definitions"}
LIST = {"allOf", "anyOf", "oneOf"}

SCHEMA_FILES = all_schema_files()
IDS = [rel(p) for p in SCHEMA_FILES]


def walk(schema, path="#"):
    """Yields (json pointer, subschema) for every schema position in schema."""
    yield path, schema
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        where = f"{path}/{key}"
        if key in ONE:
            yield from walk(value, where)
        elif key in MAP and isinstance(value, dict):
            for name, sub in value.items():
                yield from walk(sub, f"{where}/{name}")
        elif key in LIST and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from walk(sub, f"{where}/{i}")
        elif key == "items":
            if isinstance(value, list):
                for i, sub in enumerate(value):
                    yield from walk(sub, f"{where}/{i}")
            else:
                yield from walk(value, where)


def resolve(document, ref):
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def test_schema_files_exist():
    for t in INBOUND_TYPES + INTERNAL_TYPES:
        assert event_schema(t).is_file(), f"no schema for {t}"
    for name in ["directory", "rules", "sla", "clients", "calendar"]:
        assert (SCHEMAS / "config" / f"{name}.json").is_file()
    assert (SCHEMAS / "cloudevent.json").is_file()
    # Every event schema names a known type (no strays).
    known = set(INBOUND_TYPES + INTERNAL_TYPES)
    for p in (SCHEMAS / "events").glob("*.json"):
        assert p.stem in known, f"{rel(p)} is not a known event type"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=IDS)
def test_valid_draft7(path):
    schema = load(path)
    assert schema.get("$schema") == DRAFT7
    assert isinstance(schema.get("$id"), str) and schema["$id"].endswith(
        str(path.relative_to(SCHEMAS)))
    Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=IDS)
def test_supported_keywords_only(path):
    schema = load(path)
    for where, sub in walk(schema):
        if isinstance(sub, bool):
            continue
        assert isinstance(sub, dict), f"{where}: a schema must be an object or boolean"
        unknown = set(sub) - KEYWORDS
        assert not unknown, f"{where}: unsupported keywords {sorted(unknown)}"
        if "$schema" in sub or "$id" in sub:
            assert where == "#", f"{where}: $schema/$id only at the top"
        if "format" in sub:
            assert sub["format"] in FORMATS, f"{where}: unsupported format {sub['format']}"
        if "type" in sub:
            types = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
            assert set(types) <= TYPES, f"{where}: bad type {types}"
        if "pattern" in sub:
            re.compile(sub["pattern"])
        for name in sub.get("patternProperties", {}):
            re.compile(name)
        if "$ref" in sub:
            ref = sub["$ref"]
            assert ref.startswith("#/definitions/"), f"{where}: $ref {ref} leaves the document"
            resolve(schema, ref)  # KeyError if dangling


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=IDS)
def test_examples_validate(path):
    schema = load(path)
    v = Draft7Validator(schema, format_checker=format_checker())
    for where, sub in walk(schema):
        if not isinstance(sub, dict) or "examples" not in sub:
            continue
        # An example of a subschema that uses $ref needs the whole document to resolve.
        sv = Draft7Validator({**sub, "definitions": schema.get("definitions", {})},
                             format_checker=format_checker()) if where != "#" else v
        for example in sub["examples"]:
            errors = [e.message for e in sv.iter_errors(example)]
            assert not errors, f"{where} example {example!r}: {errors}"


def test_event_types_use_a_case_id():
    for t in INBOUND_TYPES[1:] + INTERNAL_TYPES:
        schema = load(event_schema(t))
        assert "case_id" in schema["required"], t
        assert schema["additionalProperties"] is False, t


def test_received_keeps_the_reported_enums():
    """duban.case.received repeats the problem's enums (no cross-file $ref): keep in sync."""
    reported = load(event_schema("duban.problem.reported"))
    received = load(event_schema("duban.case.received"))
    for name in ["kind", "category", "severity", "attachment"]:
        assert received["definitions"][name] == reported["definitions"][name], name
    same = set(reported["properties"]) - {"reporter"}
    for name in same:
        assert received["properties"][name] == reported["properties"][name], name
    assert "reporter" not in received["properties"]


def test_rules_match_the_reported_enums():
    reported = load(event_schema("duban.problem.reported"))["definitions"]
    rules = load(SCHEMAS / "config" / "rules.json")
    match = rules["definitions"]["rule"]["properties"]["match"]["properties"]
    for name in ["kind", "category", "severity"]:
        assert match[name]["items"] == reported[name], name
