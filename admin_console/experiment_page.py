"""A template experiment's results page: per variant the metric, P(best) and the two-proportion test.

Served by the console at admin/templates_app/templateversion/<pk>/results/ (the version page links to
it): the statistics live with the campaigns' A/B code (comms/campaigns/abtest.py, abstats.py), which
templates_app sits below and cannot import. The same figures as GET /api/v1/experiments/{key}/
versions/{n}/results; a bad metric, mde or control is shown as its typed error, not a 500.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from comms import errors
from comms.campaigns.abtest import METRICS, experiment_results
from templates_app.models import TemplateVersion


def version_results(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the results table for ?metric=open|click|conversion&mde=0.02&control=A (view permission)."""
    if not request.user.has_perm("templates_app.view_templateversion"):
        raise PermissionDenied
    version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
    q = request.GET
    metric, mde, control = q.get("metric", "open"), q.get("mde", "0.02"), q.get("control") or None
    weights = {v.get("key"): v.get("weight", 0) for v in (version.experiment or {}).get("variants", [])}
    result, problem = None, None
    try:
        result = experiment_results(version=version, metric=metric, mde=mde, control=control)
    except errors.CommsError as exc:
        problem = f"{exc.code}: {exc.message}"
    pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
    rows = [{**r, "weight": weights.get(r["key"], "—"), "rate_pct": pct(r["rate"]),
             "best_pct": pct(r["prob_best"])} for r in (result or {}).get("variants", [])]
    context = {**admin.site.each_context(request), "title": f"Experiment results: {version}", "version": version,
               "opts": TemplateVersion._meta, "result": result, "rows": rows, "problem": problem,
               "metrics": list(METRICS), "metric": metric, "mde": mde, "control": control or "",
               "variants": list(weights), "experiment_name": (version.experiment or {}).get("name", "")}
    return TemplateResponse(request, "admin/templates_app/templateversion/experiment_results.html", context)
