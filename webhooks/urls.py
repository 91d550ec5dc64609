from django.urls import path

from webhooks import providers as p

urlpatterns = [
    path("sendgrid", p.SendGridIntake.as_view(), name="webhook-sendgrid"),
    path("mailgun", p.MailgunIntake.as_view(), name="webhook-mailgun"),
    path("postmark", p.PostmarkIntake.as_view(), name="webhook-postmark"),
    path("ses", p.SesIntake.as_view(), name="webhook-ses"),
    path("twilio/status", p.TwilioStatusIntake.as_view(), name="webhook-twilio-status"),
    path("twilio/sms", p.TwilioInboundIntake.as_view(), name="webhook-twilio-sms"),
    path("push", p.PushFeedbackIntake.as_view(), name="webhook-push"),
]
