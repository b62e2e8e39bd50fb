"""pytest: the local settings with a fast password hasher (tests log in a great deal)."""

from bkm.settings.local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
