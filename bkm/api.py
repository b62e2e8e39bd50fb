"""The REST API's URL configuration (``/api/v1/``, ``/api/schema/``, ``/api/docs/``)."""

urlpatterns = []
