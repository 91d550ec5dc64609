"""S4's fallback audit: PyPI's project endpoint lists advisories of the latest release only, so the
audit applies it where the pinned version is the latest and names every other package as not covered."""

from __future__ import annotations

import pytest

from bench.dependency_audit import fixed_for, pypi_latest_audit, s4_result


@pytest.mark.parametrize("pinned, fixed_in, fixed", [
    ("5.2.19", ["4.2.20", "5.1.8", "5.2.1"], True),    # its own line has the fix, at or below it
    ("5.1.3", ["4.2.20", "5.1.8", "5.2.1"], False),    # its line's fix is later (4.2.20 < 5.1.3 does not count)
    ("5.2.19", ["4.2.20", "5.1.8"], True),             # a later line than every fix
    ("5.0.3", ["4.2.20", "5.1.8"], False),             # between lines, no fix on its own
    ("1.0", [], False),                                # no fix released
    ("2.0.0rc1", ["2.0.0"], False),
])
def test_fixed_in_is_compared_per_release_line(pinned, fixed_in, fixed):
    assert fixed_for(pinned, fixed_in) is fixed


def test_only_packages_pinned_at_the_latest_release_count_as_checked():
    """PyPI's answers as data (the network is what is replaced here, not the audit)."""
    answers = {
        "at-latest": {"latest": "2.1.0", "vulnerabilities": [
            {"id": "GHSA-open", "aliases": ["CVE-2026-1"], "fixed_in": ["2.1.1"]},
            {"id": "GHSA-gone", "aliases": [], "fixed_in": ["2.1.1"], "withdrawn": "2026-01-01"}]},
        "clean": {"latest": "1.0.0", "vulnerabilities": []},
        "behind": {"latest": "3.0.0", "vulnerabilities": []},
    }

    def fetch(name):
        if name not in answers:
            raise OSError("404")
        return answers[name]

    pa = pypi_latest_audit({"at-latest": "2.1.0", "clean": "1.0.0", "behind": "2.9.0", "unknown": "0.1"}, fetch)
    assert pa["covered"] == ["at-latest", "clean"] and pa["packages_audited"] == 2
    assert [(v["package"], v["id"]) for v in pa["vulnerabilities"]] == [("at-latest", "GHSA-open")]
    assert [p["package"] for p in pa["not_covered"]] == ["behind"]
    assert [p["package"] for p in pa["unreachable"]] == ["unknown"]
    row, section = s4_result(pa)
    assert row["pass"] is False and "NOT covered" in row["figure"] and "behind 2.9.0 → 3.0.0" in section["body"]
    clean = pypi_latest_audit({"clean": "1.0.0"}, fetch)
    assert s4_result(clean)[0]["pass"] is True
