"""The operator dashboard's URL configuration."""

urlpatterns = []
