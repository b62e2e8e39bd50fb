"""The language of a request: the dashboard follows the browser (or the switch), the API is English."""

from django.middleware.locale import LocaleMiddleware
from django.utils import translation

API_PREFIX = "/api/"


class DashboardLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware, except that the API answers in English whatever the client
    accepts: its messages are part of a contract that external systems read."""

    def process_request(self, request):
        if request.path_info.startswith(API_PREFIX):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return
        super().process_request(request)
