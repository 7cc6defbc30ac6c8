"""datasets/case_studies.csv against the seed files, and the verdicts notebook 07 shows."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from latency_lab import case_studies as cs
from latency_lab.modes import datasets_dir

# the case-study texts live beside the repository (they are not ours to copy into it)
_SEED_PLACES = [Path(os.environ["LAB_SEEDS_DIR"])] if os.environ.get("LAB_SEEDS_DIR") else []
_SEED_PLACES += [Path(__file__).resolve().parents[2].parent / "shared" / "seeds", Path("/work/shared/seeds")]
SEEDS = next((p for p in _SEED_PLACES if p.is_dir()), _SEED_PLACES[0])
_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(ms|minutes|minute|seconds|second|s|%|x)?", re.I)


def _norm(text: str) -> str:
    return " ".join(text.split())


def _numbers(evidence: str, unit: str) -> set[float]:
    """Every figure in the sentence, in the claim's unit (seconds become ms where the unit is ms)."""
    out = set()
    for digits, suffix in _NUMBER.findall(evidence):
        value = float(digits.replace(",", ""))
        out.add(value)
        suffix = (suffix or "").lower()
        if unit == "ms" and suffix in ("s", "seconds", "second"):
            out.add(value * 1000)
        if unit == "s" and suffix in ("minutes", "minute"):
            out.add(value * 60)
    return out


def _rows():
    with open(datasets_dir() / "case_studies.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the seed files are not beside the repository ({SEEDS})")
@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r['study']}-{r['metric']}")
def test_every_figure_is_in_its_source_sentence(row):
    text = _norm((SEEDS / row["source"]).read_text())
    assert _norm(row["evidence"]) in text, f"the evidence is not verbatim in {row['source']}"
    before, after = float(row["before"]), float(row["after"])
    found = _numbers(row["evidence"], row["unit"])
    if row["unit"] == "relative":  # "~40% lower", "10x", "25% higher": the change is in the sentence
        change = {round(abs(after - before) * 100, 6), after}
        assert change & {round(v, 6) for v in found}, f"{after} is not stated in {row['evidence']!r}"
    else:
        for value in (before, after):
            assert value == 0 or value in found, f"{value} is not in {row['evidence']!r}"


def test_the_csv_covers_all_five_studies_and_the_headline_figures():
    rows = _rows()
    assert {r["study"] for r in rows} == set(cs.STUDIES)
    got = {(r["study"], r["metric"]): (float(r["before"]), float(r["after"])) for r in rows}
    assert got[("003", "throughput")] == (180, 1300)
    assert got[("002", "p95_latency")] == (4200, 180)
    assert got[("004", "p99_latency")] == (2100, 520)
    assert got[("001", "max_throughput")] == (100, 10000)


def test_every_study_has_a_scenario_pair_that_fits_or_says_why():
    for study in cs.STUDIES:
        before, after = cs.scenario(study, "before"), cs.scenario(study, "after")
        assert before.hardware == after.hardware or study == "001"  # 001 adds a pooler's connections
        assert not before.problems() and not after.problems(), study


@pytest.fixture(scope="module")
def verdicts():
    return {study: cs.verdicts(study) for study in cs.STUDIES}


def test_every_claim_gets_one_of_the_verdicts(verdicts):
    for study, vs in verdicts.items():
        assert len(vs) == len(cs.claims(study))
        for v in vs:
            assert v.verdict in cs.VERDICTS
            assert v.reason, f"{study} {v.claim.metric}: a verdict says why"


def test_littles_law_rules_out_case_004s_latencies(verdicts):
    """Notebook 07: 10,000 users thinking 0.3 s at 4,200 req/s spend about 2 s per request."""
    latency = [v for v in verdicts["004"] if v.claim.unit == "ms"]
    assert latency and all(v.verdict == "not explained by the changes described" for v in latency)
    assert all("Little's law" in v.reason for v in latency)
    implied_after_ms = (10_000 / 4_200 - 0.3) * 1000
    assert 2_000 < implied_after_ms < 2_200


def test_case_000s_gain_is_concurrency_not_framework_speed(verdicts):
    """Notebook 07: same CPU per request both sides, yet more throughput and a lower median."""
    before, after = cs.scenario("000", "before"), cs.scenario("000", "after")
    assert before.server.framework_cpu_ms == after.server.framework_cpu_ms
    by = {v.claim.metric: v for v in verdicts["000"]}
    assert by["throughput"].model_ratio > 1.0
    assert by["p50_latency"].model_ratio < 1.0


def test_case_001_needs_more_cores_for_1000_per_instance(verdicts):
    """Notebook 07: the after cannot carry 1,000 req/s on 2 cores; with more cores it can."""
    v = next(v for v in verdicts["001"] if v.claim.metric == "p99_latency")
    assert v.verdict == "plausible only with more hardware" and "2x the API cores" in v.reason
    assert v.model_after > 1000  # on 2 cores the after cannot keep up with 1,000 req/s


def test_stale_reads_are_bounded_by_the_ttl(verdicts):
    v = next(v for v in verdicts["002"] if v.claim.metric == "stale_data_max")
    assert v.verdict == "reproduced" and v.model_after == 300
