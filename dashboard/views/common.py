"""Shared pieces of the dashboard views: tenant scoping, typed errors as form errors, local days."""

import datetime as dt
import functools
import unicodedata

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme

from balance_groups.selectors import group_get
from core.errors import BkmError, NotFound
from core.quarters import EARLIEST, LATEST, local_date, local_day_bounds, site_zone


def tenant_view(view):
    """Require a logged-in user that belongs to a tenant; the tenant is passed to the view."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        tenant = getattr(request.user, "tenant", None)
        if tenant is None:
            raise PermissionDenied("Your account is not assigned to a tenant (Mandant). Ask an administrator.")
        return view(request, tenant, *args, **kwargs)

    return wrapper


def get_group_or_404(tenant, ref):
    try:
        return group_get(tenant=tenant, ref=ref)
    except NotFound as error:
        raise Http404(error.detail) from None


def scoped_or_404(queryset, **lookup):
    """One object of an already tenant-scoped queryset, or 404 (another tenant's object is a 404 too)."""
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValidationError, ValueError):
        # ValidationError: a malformed UUID in the URL.
        raise Http404("Not found.") from None


def apply_error(form, error: BkmError, field_map: dict[str, str] | None = None) -> None:
    """Show a typed service error on the form: next to its field where the form has one.

    The error's detail is always shown at the top as well when no field error carries it, so
    the operator never sees a refusal without a reason.
    """
    field_map = field_map or {}
    placed = False
    for field, field_messages in (error.errors or {}).items():
        target = field_map.get(field, field)
        if target in form.fields:
            for message in field_messages:
                form.add_error(target, message)
            placed = True
        else:
            for message in field_messages:
                form.add_error(None, message)
            placed = True
    if not placed:
        form.add_error(None, error.detail)


def redirect_back(request, fallback="dashboard:overview"):
    """Back to the page the form came from (``next``), if it is one of ours; else ``fallback``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


def refuse(request, error: BkmError, prefix: str = "Refused") -> None:
    messages.error(request, f"{prefix}: {error.detail}")


FIRST_DAY, LAST_DAY = EARLIEST.date(), LATEST.date() - dt.timedelta(days=1)


def parse_day(value: str | None, default: dt.date | None = None) -> dt.date:
    """A local day from ``YYYY-MM-DD``; anything unreadable falls back to the default (today).

    A day outside the supported range is a 400 that says so, never a guess."""
    if value:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None:
            if not FIRST_DAY <= day <= LAST_DAY:
                raise BadRequest(f"Days from {FIRST_DAY} to {LAST_DAY} can be shown; {day} is outside.")
            return day
    return default or today_local()


def today_local() -> dt.date:
    return local_date(timezone.now())


def day_window(day: dt.date, days: int = 1) -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds of ``days`` local days starting at ``day`` (92/96/100 quarter-hours per day)."""
    start = local_day_bounds(day)[0]
    end = local_day_bounds(day + dt.timedelta(days=days - 1))[1]
    return start, end


def attachment(content: str, *, filename: str, content_type: str = "text/csv; charset=utf-8") -> HttpResponse:
    """A download whose file name is safe in any browser: control characters, quotes, slashes and
    backslashes become ``_``; a non-ASCII name is sent as RFC 6266 ``filename*`` (UTF-8)."""
    name = "".join("_" if ch in '"\\/' or unicodedata.category(ch)[0] == "C" else ch for ch in filename)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


def bad_request(request, exception=None):
    """The 400 page, with the reason when there is one to tell (``handler400``)."""
    reason = str(exception) if isinstance(exception, BadRequest) else ""
    return render(request, "400.html", {"reason": reason}, status=400)


def zone_name() -> str:
    return str(site_zone())
