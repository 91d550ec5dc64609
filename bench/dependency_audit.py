"""S4 of `make security`: the dependency audit (pip-audit, or PyPI's project endpoint where its
advisory service cannot be reached). Split out of bench/security.py; `python bench/security.py
--s4-only [--packages ...]` runs it alone."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_infra import ROOT, run, say  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "security.json"
BIN = Path(sys.executable).parent


def pip_audit() -> dict:
    out = run([str(BIN / "pip-audit"), "-f", "json", "--progress-spinner", "off", "--skip-editable"], timeout=900)
    try:
        data = json.loads(out.stdout)
    except ValueError:
        return {"reachable": False, "error": (out.stderr or out.stdout)[-800:], "vulnerable": None}
    deps = data.get("dependencies", data if isinstance(data, list) else [])
    vulns = [{"package": d["name"], "version": d["version"], "id": v["id"], "fix": v.get("fix_versions", []),
              "aliases": v.get("aliases", [])} for d in deps for v in d.get("vulns", [])]
    skipped = [d["name"] for d in deps if d.get("skip_reason")]
    if deps and len(skipped) == len(deps):  # the advisory service answered nothing for any package
        return {"reachable": False, "vulnerable": None, "packages_installed": len(deps),
                "error": f"every package skipped, e.g. {deps[0].get('skip_reason', '')}"}
    return {"reachable": True, "packages_audited": len(deps) - len(skipped), "vulnerable": len(vulns),
            "vulnerabilities": vulns, "skipped": skipped}


# PyPI's JSON API. The release endpoint (/pypi/<name>/<version>/json, which pip-audit asks) may be
# unreachable (it answers 404 through some proxies) while the project endpoint works; but the project
# endpoint's "vulnerabilities" lists only advisories that affect the LATEST release (Django's lists none
# although Django has had dozens fixed in older versions). So that list applies to a package only when
# the pinned version is the latest release; every other package is named as not covered, never passed.
PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"


def _pypi_latest(name: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(PYPI_PROJECT.format(name=name), timeout=30) as reply:  # nosec B310: https constant
        data = json.loads(reply.read())
    return {"latest": data["info"]["version"], "vulnerabilities": data.get("vulnerabilities") or []}


def fixed_for(pinned: str, fixed_in: list[str]) -> bool:
    """Whether ``pinned`` carries the fix: a fix on its own release line (same major.minor) at or below
    it, or, when its line has no fix listed, every listed fix at or below it (a later line). No fix → no."""
    from packaging.version import InvalidVersion, Version

    try:
        have = Version(pinned)
        fixes = [Version(f) for f in fixed_in]
    except InvalidVersion:
        return False
    same_line = [f for f in fixes if f.release[:2] == have.release[:2]]
    if same_line:
        return have >= min(same_line)
    return bool(fixes) and all(f <= have for f in fixes)


def installed_distributions() -> dict[str, str]:
    """Every distribution installed in this interpreter's environment (canonical name → version)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def direct_pins() -> dict[str, str]:
    """The ``==`` pins of pyproject.toml (runtime and dev)."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project.get("dependencies", []), *sum(project.get("optional-dependencies", {}).values(), [])]
    pins = {}
    for spec in specs:
        req = Requirement(spec)
        pins[canonicalize_name(req.name)] = next((s.version for s in req.specifier if s.operator == "=="), "")
    return pins


def pypi_latest_audit(packages: dict[str, str] | None = None, fetch=_pypi_latest) -> dict:
    """S4 where only PyPI's project endpoint answers: per package, is the pinned version the latest release
    (then PyPI's advisory list applies, and each advisory's fixed_in is compared with the pinned version),
    or not (then the package is listed as not covered)."""
    from concurrent.futures import ThreadPoolExecutor

    from packaging.version import InvalidVersion, Version

    packages = packages if packages is not None else installed_distributions()
    pins = direct_pins()
    names = sorted(packages)

    def look(name: str):
        try:
            return name, fetch(name), ""
        except Exception as exc:  # a package PyPI does not know, or the network: reported, never passed
            return name, None, f"{type(exc).__name__}: {str(exc)[:120]}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(look, names))
    covered, not_covered, unreachable, vulns = [], [], [], []
    for name, answer, error in answers:
        pinned = packages[name]
        if answer is None:
            unreachable.append({"package": name, "version": pinned, "error": error})
            continue
        try:
            is_latest = Version(pinned) == Version(answer["latest"])
        except InvalidVersion:
            is_latest = pinned == answer["latest"]
        (covered if is_latest else not_covered).append(
            {"package": name, "version": pinned, "latest": answer["latest"], "direct": name in pins})
        for v in answer["vulnerabilities"]:
            if v.get("withdrawn") or fixed_for(pinned, v.get("fixed_in") or []):
                continue
            vulns.append({"package": name, "version": pinned, "id": v.get("id", ""), "fix": v.get("fixed_in") or [],
                          "aliases": v.get("aliases") or [],
                          "applies": "listed for the pinned (= latest) release" if is_latest
                          else f"listed for the latest release {answer['latest']}; the pinned one is likely affected"})
    reachable = len(unreachable) < len(names)
    return {"reachable": reachable, "method": "pypi-project-endpoint", "packages_installed": len(names),
            "packages_audited": len(covered), "vulnerable": len(vulns) if reachable else None,
            "vulnerabilities": vulns, "not_covered": not_covered, "unreachable": unreachable,
            "direct_not_covered": sorted(p["package"] for p in not_covered if p["direct"]),
            "covered": [p["package"] for p in covered],
            "error": "" if reachable else f"PyPI's project endpoint unreachable, e.g. {unreachable[0]['error']}"}


def dependency_audit() -> dict:
    """pip-audit where its advisory service answers; else PyPI's project endpoint, with its limits named."""
    pa = pip_audit()
    if pa["reachable"]:
        pa["method"] = "pip-audit"
        return pa
    fallback = pypi_latest_audit()
    fallback["pip_audit_error"] = pa.get("error", "")
    return fallback


def s4_result(pa: dict) -> tuple[dict, dict]:
    """The S4 row and the dependency section of docs/security.md, from either audit."""
    if pa.get("method") == "pypi-project-endpoint" and pa["reachable"]:
        gaps = pa["not_covered"] + pa["unreachable"]
        figure = (f"pip-audit's advisory service unreachable; PyPI's project endpoint checked instead: "
                  f"{pa['packages_audited']} of {pa['packages_installed']} installed packages are pinned at their "
                  f"latest release, where its advisory list applies: {pa['vulnerable']} known vulnerabilities; "
                  f"{len(pa['not_covered'])} packages are pinned below (or off) the latest release and are NOT "
                  f"covered (direct pins among them: {len(pa['direct_not_covered'])}); "
                  f"{len(pa['unreachable'])} not answered")
        row = {"id": "S4", "name": "dependency advisories (pip-audit / PyPI)",
               "does": "every installed package against PyPI's advisory data (pip-audit; where its release endpoint "
                       "is unreachable, the project endpoint, whose advisory list covers the latest release only)",
               "figure": figure, "bar": "0 known vulnerabilities, or each answered, for every package",
               "pass": pa["vulnerable"] == 0 and not gaps, "figures": pa}
        listed = "\n".join(f"* {v['package']} {v['version']}: {v['id']} ({', '.join(v['aliases'])}; fix: "
                            f"{', '.join(v['fix']) or 'none yet'}; {v['applies']})" for v in pa["vulnerabilities"])
        body = ("pip-audit could not reach its advisory data from this machine "
                f"(`{pa.get('pip_audit_error', '')[:200]}`). PyPI's project endpoint (`/pypi/<name>/json`) answers, "
                "but its `vulnerabilities` list covers only the latest release of each project (it lists no "
                "advisory for Django, whose older releases have had dozens). So it was applied only where the "
                "pinned version is the latest release, comparing each advisory's `fixed_in` with the pinned "
                "version; every other package is listed below as not covered.\n\n"
                + (listed or f"No known vulnerabilities in the {pa['packages_audited']} covered packages.")
                + "\n\n**Not covered** (pinned → latest; direct pins in bold): "
                + ", ".join(f"**{p['package']}**" if p["direct"] else p["package"]
                            for p in pa["not_covered"]) + " ("
                + "; ".join(f"{p['package']} {p['version']} → {p['latest']}" for p in pa["not_covered"]) + ")"
                + ("\n\n**Not answered by PyPI:** " + ", ".join(f"{p['package']} {p['version']}"
                                                             for p in pa["unreachable"]) if pa["unreachable"] else "")
                + "\n\nRe-run `make security` where pip-audit's advisory service is reachable for a complete audit.")
        return row, {"title": "pip-audit", "body": body}
    row = {"id": "S4", "name": "pip-audit", "does": "the installed, pinned dependency set against the PyPI advisory data",
           "figure": (f"{pa['packages_audited']} packages, {pa['vulnerable']} known vulnerabilities" if pa["reachable"]
                      else f"vulnerability service unreachable: {pa.get('error', '')[:160]}"),
           "bar": "0 known vulnerabilities, or each answered", "pass": bool(pa["reachable"]) and pa["vulnerable"] == 0,
           "figures": pa}
    body = (("\n".join(f"* {v['package']} {v['version']}: {v['id']} (fix: {', '.join(v['fix']) or 'none yet'})"
                        for v in pa["vulnerabilities"]) or "No known vulnerabilities in the pinned set.")
            if pa["reachable"] else f"The vulnerability service could not be reached from this machine: "
                                    f"`{pa.get('error', '')[:400]}`. Re-run `make security` where PyPI's JSON API "
                                    "is reachable.")
    return row, {"title": "pip-audit", "body": body}


# --- the report -------------------------------------------------------------------------------------


def s4_only(names: list[str]) -> int:
    """Just the dependency audit. A partial run (``names``) only prints; a full one replaces the S4 row and
    section of docs/results/security.json, leaving docs/security.md for `make security` to regenerate."""
    from packaging.utils import canonicalize_name

    if names:
        installed = installed_distributions()
        pa = pypi_latest_audit({canonicalize_name(n): installed[canonicalize_name(n)] for n in names})
    else:
        pa = dependency_audit()
    row, section = s4_result(pa)
    say(json.dumps({k: v for k, v in row.items() if k != "figures"}, indent=1))
    say(json.dumps({k: pa[k] for k in ("not_covered", "unreachable", "vulnerabilities") if k in pa}, indent=1))
    if not names and RESULTS.exists():
        data = json.loads(RESULTS.read_text())
        data["results"] = [row if r["id"] == "S4" else r for r in data["results"]]
        data["sections"] = [section if s["title"] == "pip-audit" else s for s in data["sections"]]
        data["s4_generated_at"] = datetime.now(dt_timezone.utc).isoformat(timespec="seconds")
        RESULTS.write_text(json.dumps(data, indent=2, default=str) + "\n")
        say("updated S4 in docs/results/security.json")
    return 0 if row["pass"] else 1
