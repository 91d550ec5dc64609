"""The beat's side of a staged rollout: scheduled steps and the guardrails that roll one back.

Every ``COMMS_ROLLOUT_TICK_SECONDS`` each open rollout is judged, then (if running and due) stepped:

* Figures per version since the rollout started come from ``COMMS_ROLLOUT_METRICS`` (tracking's
  ``version_rates``: the same hard-bounce and complaint counts the experiment guardrails use, plus
  unsubscribes), and render errors from the per-version counter the send path keeps.
* Rates: bounce (hard), complaint and unsubscribe per *sent* message of that version; render errors
  per attempted send (messages accepted + refused single sends; a bulk row that cannot render is a
  message already, recorded under the version the split gave it).
* Nothing is judged until the new version has ``min_volume`` sends. A metric breaches when the new
  rate passes its ``max_pct`` (absolute), or, when the old version also has ``min_volume`` sends, when it
  passes ``max_ratio`` × the old rate and is ``min_delta_pct`` points above it (relative: a new version
  twice as bad as the old one, by a margin that is not noise).
* A breach rolls the rollout back (everyone gets the previous version), raises an ops alert through
  ``COMMS_OPS_ALERT`` and writes an audit row; the rollout keeps which metric, both rates and volumes.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from comms import errors
from comms.redis import redis_client
from templates_app.models import TemplateRollout
from templates_app.rollout import (
    METRICS,
    OPEN,
    State,
    _render_error_key,
    rollout_advance,
    rollout_pause,
    rollout_rollback,
)

log = logging.getLogger(__name__)


def _render_errors(rollout: TemplateRollout, version_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per version: (refused single sends, bulk rows that could not render)."""
    keys = [_render_error_key(rollout.pk, v, row=row) for v in version_ids for row in (False, True)]
    try:
        values = redis_client().mget(keys)
    except Exception:  # noqa: BLE001 — Redis down: judge the other metrics, count none here
        log.warning("rollout %s: render error counts unavailable", rollout.pk, exc_info=True)
        values = [None] * len(keys)
    return {v: (int(values[2 * i] or 0), int(values[2 * i + 1] or 0)) for i, v in enumerate(version_ids)}


def _pct(count: int, of: int) -> float:
    return round(count * 100.0 / of, 4) if of else 0.0


def rollout_figures(rollout: TemplateRollout, *, now: datetime | None = None) -> dict:
    """Per metric: both versions' rates and volumes, the rule and whether it is breached."""
    now = now or timezone.now()
    new, old = rollout.version_id, rollout.previous_id
    counts = import_string(settings.COMMS_ROLLOUT_METRICS)(version_ids=[new, old], since=rollout.started_at, now=now)
    render_errors = _render_errors(rollout, [new, old])
    out: dict = {"checked_at": now.isoformat(), "judged": False, "min_volume": rollout.min_volume, "metrics": {}}
    for metric in METRICS:
        rule = rollout.guardrails.get(metric) or {}
        rates, volumes = {}, {}
        for role, vid in (("new", new), ("old", old)):
            if metric == "render_error":
                refused, rows = render_errors[vid]  # a failed bulk row is already an accepted message
                volumes[role] = counts[vid]["accepted"] + refused
                rates[role] = _pct(refused + rows, volumes[role])
            else:
                volumes[role] = counts[vid]["sent"]
                rates[role] = _pct(counts[vid][metric], volumes[role])
        # Each metric waits for its own volume: render errors count refused sends, which were never sent.
        judged, old_enough = volumes["new"] >= rollout.min_volume, volumes["old"] >= rollout.min_volume
        out["judged"] |= judged
        why = ""
        if judged and "max_pct" in rule and rates["new"] > rule["max_pct"]:
            why = f"{rates['new']:g} % is above the {rule['max_pct']:g} % ceiling"
        elif judged and old_enough and "max_ratio" in rule and rates["new"] > rates["old"] * rule["max_ratio"] \
                and rates["new"] - rates["old"] >= rule.get("min_delta_pct", 0):
            why = (f"{rates['new']:g} % is more than {rule['max_ratio']:g} × the old version's {rates['old']:g} % "
                   f"(and {rule.get('min_delta_pct', 0):g} points above it)")
        out["metrics"][metric] = {"new_rate": rates["new"], "old_rate": rates["old"], "new_volume": volumes["new"],
                                  "old_volume": volumes["old"], "rule": rule, "breached": bool(why), "why": why}
    return out


def _alert(rollout: TemplateRollout, metric: str, figures: dict, text: str) -> None:
    path = settings.COMMS_OPS_ALERT
    if path:
        import_string(path)(kind="template.rollout_rolled_back", text=text,
                            data={"template": rollout.template.template_key, "version": rollout.version.version,
                                  "previous": rollout.previous.version, "metric": metric, **figures})


def rollout_check(rollout: TemplateRollout, *, now: datetime | None = None) -> TemplateRollout:
    """Judge one open rollout's guardrails (rolling it back on a breach), then take a due scheduled step."""
    now = now or timezone.now()
    figures = rollout_figures(rollout, now=now)
    TemplateRollout.objects.filter(pk=rollout.pk).update(guardrail_status=figures)
    breached = next(((m, f) for m, f in figures["metrics"].items() if f["breached"]), None)
    if breached is not None:
        metric, f = breached
        details = {"metric": metric, "new_rate": f["new_rate"], "old_rate": f["old_rate"],
                   "new_volume": f["new_volume"], "old_volume": f["old_volume"], "rule": f["rule"]}
        text = (f"template {rollout.template.template_key} v{rollout.version.version} rolled back to "
                f"v{rollout.previous.version}: {metric} {f['why']} ({f['new_volume']} vs {f['old_volume']} sends)")
        try:
            rollout = rollout_rollback(rollout=rollout, actor=None, reason=f"guardrail {metric}: {f['why']}",
                                       details=details, now=now)
        except errors.CommsError as exc:  # the previous version was archived: hold the split, say so loudly
            text = f"{text} FAILED ({exc.message}); the rollout is paused instead"
            if rollout.state == State.RUNNING:
                rollout = rollout_pause(rollout=rollout, actor=None, now=now)
        _alert(rollout, metric, details, text)
        return rollout
    if rollout.state == State.RUNNING and rollout.next_step_at is not None and rollout.next_step_at <= now:
        rollout = rollout_advance(rollout=rollout, actor=None, now=now)
    return rollout


def rollouts_tick(*, now: datetime | None = None) -> dict:
    """Beat: every open rollout judged and stepped; one failing rollout does not stop the others."""
    now = now or timezone.now()
    done = {"checked": 0, "rolled_back": 0, "advanced": 0}
    for rollout in TemplateRollout.objects.filter(state__in=OPEN).select_related("template", "version", "previous"):
        before = rollout.percent
        try:
            after = rollout_check(rollout, now=now)
        except Exception:  # noqa: BLE001
            log.exception("rollout %s: check failed", rollout.pk)
            continue
        done["checked"] += 1
        done["rolled_back"] += after.state == State.ROLLED_BACK
        done["advanced"] += after.percent > before
    return done
