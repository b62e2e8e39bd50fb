"""Development and the embedded default: a per-checkout secret key when none is configured."""

from bkm.settings.base import *  # noqa: F403
from bkm.settings.base import BASE_DIR

if not SECRET_KEY:  # noqa: F405
    # Kept beside the checkout, out of version control, so sessions survive a restart.
    key_file = BASE_DIR / ".secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
    SECRET_KEY = key_file.read_text().strip()
