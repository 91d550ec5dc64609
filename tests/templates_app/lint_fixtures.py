"""MJML fixtures for the lint tests: each rule gets a document that trips it and one that does not.

They go through the real path (template_create → MJML → CSS inlining → Handlebars with sample
variables) so the lint sees what a recipient would get."""

from __future__ import annotations

from templates_app import services
from templates_app.models import Template, TemplateLocale, TemplateVersion
from templates_app.quality.lint import lint_locale

SAMPLE = {"name": "Ada", "url": "https://shop.example.com/o/A-1"}
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "url": {"type": "string"}}}
TEXT = "Hello {{name}}, your order shipped. Track it: {{url}}"


def mjml(body: str, *, bg: str = "#fafafa", lang: str = "en", head: str = "") -> str:
    """A clean document around ``body``: language set, an off-white page, readable defaults."""
    body_bg = f' background-color="{bg}"' if bg else ""
    lang_attr = f' lang="{lang}"' if lang else ""
    return (f"<mjml{lang_attr}><mj-head><mj-attributes><mj-text color=\"#1a1a1a\" font-size=\"16px\"></mj-text>"
            f"</mj-attributes>{head}</mj-head><mj-body{body_bg}><mj-section><mj-column>{body}"
            "</mj-column></mj-section></mj-body></mjml>")


GOOD_BODY = ('<mj-image src="https://cdn.example.com/photo.jpg" alt="Your parcel"></mj-image>'
             "<mj-text>Hello {{name}}, your order shipped.</mj-text>"
             '<mj-button href="{{url}}" background-color="#1f4f99" color="#ffffff">Track your order</mj-button>')


def email_template(tenant, actor, *, body_html: str, subject: str = "Your order shipped, {{name}}",
                   body_text: str = TEXT, locale: str = "en", key: str = "lint_case") -> Template:
    """An email-only template with one locale, created through the service like the API does."""
    return services.template_create(tenant=tenant, actor=actor, user=actor, data={
        "template_key": key, "name": "Lint case", "channels": ["email"], "default_locale": locale,
        "variables_schema": SCHEMA, "sample_variables": SAMPLE,
        "locales": [{"locale": locale, "subject": subject, "body_html": body_html, "body_text": body_text}]})


def lint_draft(body_html: str, *, subject: str = "Your order shipped, {{name}}", body_text: str = TEXT,
               locale: str = "en") -> list[dict]:
    """Findings for an unsaved draft, whose email the real render path renders fresh from its fields."""
    template = Template(template_key="lint_case", channels=["email"], default_locale=locale)
    parts = {"locale": locale, "subject": subject, "body_html": body_html, "body_text": body_text}
    version = TemplateVersion(template=template, version=1, sample_variables=SAMPLE, variables_schema=SCHEMA)
    return lint_locale(version, TemplateLocale(version=version, **parts))
