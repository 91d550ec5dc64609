from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Campaigns, segments, audiences, fan-out and campaign metrics (an upper package of comms).

    Its own app so the kernel never imports it: it sits above delivery, templates_app and tracking
    and calls down into them through their services.
    """

    name = "comms.campaigns"
    label = "campaigns"
    verbose_name = "comms campaigns"
