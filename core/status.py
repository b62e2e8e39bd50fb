"""The only two statuses there are: of a booking, of a balance and of a settlement (DOMAIN.md)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    PROVISIONAL = "provisional", _("Provisional")
    FINAL = "final", _("Final")
