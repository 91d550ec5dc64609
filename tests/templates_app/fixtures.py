"""A realistic template used across the template tests and the render benchmark."""

import copy

ORDER_MJML = """<mjml>
  <mj-head><mj-style inline="inline">.total { font-weight: bold; color: #1a1a1a; }</mj-style></mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section><mj-column>
      <mj-image src="https://cdn.example.com/logo.png" alt="Shop" width="120px"></mj-image>
      <mj-text font-size="20px">Hello {{user.first_name}},</mj-text>
      <mj-text>Thanks for order <b>{{order.id}}</b> placed on {{formatDate order.created_at "MMM DD, YYYY"}}.
        {{#if order.is_rush}}It arrives tomorrow!{{else}}It arrives in 3-5 business days.{{/if}}</mj-text>
      <mj-table>
        {{#each items}}<tr><td>{{this.name}}</td><td>{{this.qty}}</td><td>{{formatCurrency this.price ../order.currency}}</td></tr>{{/each}}
      </mj-table>
      <mj-text css-class="total">Total: {{formatCurrency order.total order.currency}} ({{items.length}} {{pluralize items.length "item"}})</mj-text>
      <mj-button href="{{order.url}}">Track your order</mj-button>
      <mj-text>{{default note "No note."}}</mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>"""

SCHEMA = {
    "type": "object",
    "required": ["user", "order", "items"],
    "properties": {
        "user": {"type": "object", "required": ["first_name"], "properties": {"first_name": {"type": "string"}}},
        "order": {"type": "object", "required": ["id", "total", "currency", "url", "created_at"],
                  "properties": {"id": {"type": "string"}, "total": {"type": "number"},
                                 "currency": {"type": "string"}, "url": {"type": "string"},
                                 "created_at": {"type": "string"}, "is_rush": {"type": "boolean"}}},
        "items": {"type": "array", "items": {"type": "object"}},
        "note": {"type": "string"},
    },
}


def variables(n_items: int = 3, **overrides) -> dict:
    data = {
        "user": {"first_name": "Ada"},
        "order": {"id": "A-1001", "total": 1234.5, "currency": "EUR", "url": "https://shop.example.com/o/A-1001",
                  "created_at": "2026-03-05T10:00:00Z", "is_rush": False},
        "items": [{"name": f"Item {i}", "qty": i + 1, "price": 10 + i} for i in range(n_items)],
    }
    data.update(overrides)
    return data


def order_template_data(**extra) -> dict:
    return {
        "template_key": "order_confirmation", "name": "Order confirmation", "category": "transactional",
        "channels": ["email", "sms", "push", "in_app"], "default_locale": "en-US",
        "variables_schema": copy.deepcopy(SCHEMA), "sample_variables": variables(),
        "locales": [
            {"locale": "en-US", "subject": "Order {{order.id}} confirmed, {{user.first_name}}",
             "body_html": ORDER_MJML,
             "sms_text": "Order {{order.id}}: {{formatCurrency order.total order.currency}}. Track: {{order.url}}",
             "push_title": "Order {{order.id}}", "push_body": "Total {{formatCurrency order.total order.currency}}",
             "in_app_content": {"title": "Order {{order.id}}", "body": "Thanks {{user.first_name}}",
                                "link": "{{order.url}}"}},
            {"locale": "de", "subject": "Bestellung {{order.id}} bestätigt",
             "body_html": ORDER_MJML.replace("Hello", "Hallo"),
             "sms_text": "Bestellung {{order.id}}: {{formatCurrency order.total order.currency}}",
             "push_title": "Bestellung {{order.id}}", "push_body": "Summe {{formatCurrency order.total order.currency}}",
             "in_app_content": {"title": "Bestellung {{order.id}}", "body": "Danke"}},
        ],
        **extra,
    }
