"""The only two statuses there are: of a booking, of a balance and of a settlement (DOMAIN.md)."""

from django.db import models


class Status(models.TextChoices):
    PROVISIONAL = "provisional", "Provisional"
    FINAL = "final", "Final"
