"""An order template with an Arabic (ar-EG) locale and dark-mode CSS, for the RTL and preview tests."""

from __future__ import annotations

from tests.templates_app.fixtures import SCHEMA, variables

# Two columns, so mirroring shows in the column order; a dark-mode rule, so the dark screenshot differs.
AR_MJML = """<mjml>
  <mj-head><mj-style>
    @media (prefers-color-scheme: dark) {
      body, .dm, .dm div { background: #121212 !important; color: #f0f0f0 !important; }
    }
  </mj-style></mj-head>
  <mj-body background-color="#ffffff" css-class="dm">
    <mj-section><mj-column>
      <mj-text css-class="greeting" font-size="20px">مرحباً {{user.first_name}}</mj-text>
      <mj-text>شكراً لطلبك رقم <b>{{order.id}}</b>. المجموع {{formatCurrency order.total order.currency}}.</mj-text>
    </mj-column><mj-column>
      <mj-text css-class="side">العمود الثاني</mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""
EN_MJML = AR_MJML.replace("مرحباً", "Hello").replace("شكراً لطلبك رقم", "Thanks for order") \
    .replace("المجموع", "Total").replace("العمود الثاني", "Second column")


def rtl_template_data(**extra) -> dict:
    return {
        "template_key": "order_rtl", "name": "Order (RTL)", "category": "transactional",
        "channels": ["email", "sms", "push", "in_app"], "default_locale": "en-US",
        "variables_schema": SCHEMA, "sample_variables": variables(user={"first_name": "أحمد"}),
        "locales": [
            {"locale": "en-US", "subject": "Order {{order.id}}", "body_html": EN_MJML, "sms_text": "Order {{order.id}}",
             "push_body": "Order {{order.id}}", "in_app_content": {"title": "Order", "body": "Thanks"}},
            {"locale": "ar-EG", "subject": "Acme: طلبك {{order.id}}", "body_html": AR_MJML,
             "sms_text": "Acme: تم تأكيد طلبك {{order.id}}\nشكراً",
             "push_title": "Acme", "push_body": "طلبك {{order.id}}",
             "in_app_content": {"title": "Acme", "body": "طلبك", "link": "{{order.url}}"}},
        ],
        **extra,
    }
