"""pytest: the local settings with a fast password hasher (tests log in a great deal)."""

from bkm.settings.local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Login failures counted in the database, so each test starts without any (its transaction is rolled back).
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
