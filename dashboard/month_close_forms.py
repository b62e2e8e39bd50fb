"""The form of the month close for a site: an explicit confirmation that names what will be closed."""

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


class GroupCodesField(forms.Field):
    """The codes of the groups the page listed, sent back as hidden inputs (one per code)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        return [str(code) for code in (value if isinstance(value, list | tuple) else [value])]


class MonthCloseForm(forms.Form):
    groups = GroupCodesField(required=False)
    confirm = forms.BooleanField(
        required=True,
        error_messages={"required": _("Confirm which groups are closed, up to which instant.")},
    )
    accept_provisional = forms.BooleanField(
        required=False,
        label=_("Accept provisional figures"),
        help_text=_(
            "Close although values are provisional or missing (gaps). Open clarification cases and days "
            "waiting for the settlement run always prevent the close."
        ),
    )

    def __init__(self, *args, count: int, until_text: str, offer_provisional: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["confirm"].label = ngettext(
            "Close this group up to %(until)s",
            "Close these %(count)d groups up to %(until)s",
            count,
        ) % {"count": count, "until": until_text}
        if not offer_provisional:
            del self.fields["accept_provisional"]
