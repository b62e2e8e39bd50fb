from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("bkm.api")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the dashboard's language switch
    path("", include("dashboard.urls")),
]

handler400 = "dashboard.views.common.bad_request"
