"""Experiments: the traffic split between a version's variants (a staged rollout of a variant)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from comms import errors
from comms.audit import audit_record
from templates_app.models import TemplateVersion


def experiment_weights_set(*, version: Any, user: Any, weights: dict[str, float], reason: str,
                           ip: str | None = None) -> Any:
    """Change the traffic split of a version's experiment variants (staged rollout of a variant).

    Only weights change; the variants' content stays as approved. Approvers only; audited with the
    old and new split. A weight of 0 takes a variant out of rotation.
    """
    if not user.has_perm("templates_app.approve_template"):
        raise errors.Forbidden("Changing experiment weights needs the approver role.")
    if not reason.strip():
        raise errors.ValidationFailed("Say why the split changes (a reason is required).")
    with transaction.atomic():
        version = TemplateVersion.objects.select_for_update().select_related("template").get(pk=version.pk)
        experiment = dict(version.experiment or {})
        variants = [dict(v) for v in experiment.get("variants", [])]
        known = {v.get("key") for v in variants}
        if not variants or set(weights) - known:
            raise errors.ValidationFailed("Unknown variant(s): " + ", ".join(sorted(set(weights) - known))
                                          if variants else "This version has no experiment variants.")
        if any(w < 0 or w != w for w in weights.values()):
            raise errors.ValidationFailed("Weights are zero or positive numbers.")
        before = {v["key"]: v.get("weight", 0) for v in variants}
        for v in variants:
            if v["key"] in weights:
                v["weight"] = weights[v["key"]]
        if sum(float(v.get("weight", 0)) for v in variants) <= 0:
            raise errors.ValidationFailed("At least one variant needs a positive weight.")
        experiment["variants"] = variants
        version.experiment = experiment
        version.save(update_fields=["experiment"])
        audit_record(actor=user, action="template.experiment_weights", target=version, reason=reason, ip=ip,
                     tenant=version.template.tenant,
                     diff={"weights": [before, {v["key"]: v.get("weight", 0) for v in variants}]})
    return version
