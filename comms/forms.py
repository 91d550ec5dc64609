"""Admin form fields shared by every app's ModelAdmins."""

from __future__ import annotations

from django import forms
from django.contrib.postgres.fields import ArrayField
from django.db import models


def choice_array_formfield(db_field: ArrayField) -> forms.TypedMultipleChoiceField:
    """An ArrayField of choices (channels, categories, scopes) as one checkbox per choice.

    Django's default for an ArrayField is a comma-separated text box, which saves a typo ("emial")
    as if it were a channel; a fixed set of checkboxes can only produce values of the enum.
    """
    return forms.TypedMultipleChoiceField(
        choices=db_field.base_field.choices, widget=forms.CheckboxSelectMultiple, required=not db_field.blank,
        label=db_field.verbose_name.capitalize(), help_text=db_field.help_text,
        error_messages={"invalid_choice": "%(value)s is not one of the choices.", "required": "Choose at least one."})


class ChoiceArrayAdminMixin:
    """ModelAdmin mixin: every ArrayField whose items have choices is edited as checkboxes."""

    def formfield_for_dbfield(self, db_field: models.Field, request, **kwargs):
        if isinstance(db_field, ArrayField) and db_field.base_field.choices:
            return choice_array_formfield(db_field)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
