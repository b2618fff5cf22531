#!/usr/bin/env python3
"""Converts the sspr-exporter Sigma rules with pySigma's Elasticsearch backends.

Usage: convert.py [--json] [RULE.yml ...]

Without files it converts every rule of rules/sigma. Each rule file is
converted with the pipeline pipeline/sspr_exporter.yml into Lucene (plain
rules and the base rules of correlations), ES|QL (plain and correlations)
and EQL (sequences). --json prints one JSON object for all files, which the
project's cross-check test reads; otherwise the queries are printed.
"""
import glob
import json
import os
import sys

import yaml

from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = os.path.join(HERE, "pipeline", "sspr_exporter.yml")


def pipeline():
    with open(PIPELINE, encoding="utf-8") as f:
        return ProcessingPipeline.from_yaml(f.read())


def field_mapping():
    """The Sigma to ECS field names of the pipeline."""
    with open(PIPELINE, encoding="utf-8") as f:
        p = yaml.safe_load(f)
    for t in p["transformations"]:
        if t["type"] == "field_name_mapping":
            return t["mapping"]
    return {}


def collection(text):
    # Each conversion gets a fresh parse: processing rewrites the rules' fields.
    return SigmaCollection.from_yaml(text)


def convert(backend, text, pick=None):
    col = collection(text)
    if pick is not None:
        col = SigmaCollection([r for r in col.rules if pick(r)])
    return backend(pipeline()).convert(col)


def try_convert(backend, text, pick=None):
    try:
        return convert(backend, text, pick), None
    except Exception as e:  # the error is reported, not fatal: a backend may not support a type
        return [], f"{type(e).__name__}: {e}"


def describe(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    col = collection(text)
    fields = field_mapping()
    docs = {}
    for doc in text.split("\n---\n"):
        if "\ncorrelation:" not in "\n" + doc:
            docs[str(collection(doc).rules[0].id)] = doc
    out = {"file": os.path.basename(path), "rules": []}
    for r in col.rules:
        entry = {"id": str(r.id), "title": r.title}
        if isinstance(r, SigmaCorrelationRule):
            entry["correlation"] = {
                "type": r.type.name.lower(),
                "rules": [ref.reference for ref in r.rules],
                "group_by": [fields.get(g, g) for g in r.group_by or []],
                "timespan_seconds": r.timespan.seconds,
                "condition": {"op": r.condition.op.name.lower(), "count": r.condition.count,
                              "field": fields.get(r.condition.fieldref, r.condition.fieldref)},
            }
            target = r.id
            entry["esql"], entry["esql_error"] = try_convert(
                ESQLBackend, text, lambda x, t=target: x.id == t or not isinstance(x, SigmaCorrelationRule))
            entry["eql"], entry["eql_error"] = try_convert(
                EqlBackend, text, lambda x, t=target: x.id == t or not isinstance(x, SigmaCorrelationRule))
        else:
            # Alone, from its own YAML document: in the file a correlation
            # may keep a base rule from being output.
            entry["name"] = r.name
            doc = docs[str(r.id)]
            entry["lucene"], entry["lucene_error"] = try_convert(LuceneBackend, doc)
            entry["esql"], entry["esql_error"] = try_convert(ESQLBackend, doc)
        out["rules"].append(entry)
    return out


def main(argv):
    as_json = "--json" in argv
    files = [a for a in argv if a != "--json"] or sorted(glob.glob(os.path.join(HERE, "*.yml")))
    result = [describe(p) for p in files]
    if as_json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return 0
    for f in result:
        for r in f["rules"]:
            print(f"# {f['file']}: {r['title']} ({r['id']})")
            for kind in ("lucene", "esql", "eql"):
                for q in r.get(kind) or []:
                    print(f"[{kind}] {q}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
