"""Group pages and the actions on a group: create, edit, close, change rule, finalize, export."""

import datetime as dt
import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from balance_groups import services as group_services
from balance_groups.models import BalanceGroup, GroupKind
from core.errors import BkmError
from core.quarters import boundary_at_or_after, next_quarter_after
from dashboard.charts import balance_chart_data
from dashboard.forms import (
    MAX_TARGETS,
    BookingFilterForm,
    FinalizeUntilForm,
    GroupCloseForm,
    GroupCreateForm,
    GroupEditForm,
    RuleChangeForm,
    local_input_value,
)
from dashboard.service_errors import apply_service_error, plain_label
from dashboard.templatetags.formatting import local_zone
from dashboard.views.common import (
    attachment,
    day_window,
    get_group_or_404,
    parse_day,
    redirect_back,
    tenant_view,
    zone_name,
)
from dashboard.views.schemes import consumer_supply
from settlement.models import SettlementRule
from settlement.selectors import group_balance
from settlement.services import rule_change
from transactions.csv_io import balance_csv
from transactions.models import Booking, BookingKind, BookingStatus
from transactions.selectors import group_bookings
from transactions.services import bookings_finalize_until

BOOKINGS_PER_PAGE = 25
SPANS = {"day": 1, "week": 7}


def _group_url(group, **params) -> str:
    url = reverse("dashboard:group", args=[group.pk])
    query = "&".join(f"{key}={value}" for key, value in params.items() if value)
    return f"{url}?{query}" if query else url


def _bookings_page(request, group, start, end):
    form = BookingFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    bookings = group_bookings(group=group).annotate(is_reversed=Exists(Booking.objects.filter(reverses=OuterRef("pk"))))
    if filters.get("window", "shown") != "all":
        bookings = bookings.filter(end__gt=start, start__lt=end)
    if filters.get("status"):
        bookings = bookings.filter(status=filters["status"])
    if filters.get("kind"):
        bookings = bookings.filter(kind=filters["kind"])
    page = Paginator(bookings.order_by("-start", "kind", "id"), BOOKINGS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return form, page, query.urlencode()


def _fully_closed(group) -> bool:
    """Every quarter-hour of the group's validity is closed: closing again would change nothing."""
    return bool(group.valid_until and group.closed_until and group.closed_until >= group.valid_until)


def _pending_bookings(group):
    """The group's provisional bookings an operator can finalize (the engine's become final by themselves)."""
    return group_bookings(group=group).filter(status=BookingStatus.PROVISIONAL, kind=BookingKind.MANUAL)


def _rule_change_refusal(group, next_change) -> str:
    """Why a rule change would be refused whenever it is sent, or empty."""
    if group.valid_until and next_change >= group.valid_until:
        return _("The group is valid until %(until)s; a rule change cannot take effect any more.") % {
            "until": local_zone(group.valid_until)
        }
    return ""


def _next_rule_change(current):
    next_change = next_quarter_after(timezone.now())
    if current is not None:  # the version in force governs its window: an hourly rule changes at a full hour
        next_change = boundary_at_or_after(next_change, current.interval)
    return next_change


def _current_rule(group):
    return (
        SettlementRule.objects.filter(group=group, effective_until__isnull=True)
        .prefetch_related("targets__parent")
        .first()
    )


@tenant_view
def group_detail(request, tenant, ref):
    group = get_group_or_404(tenant, ref)
    day = parse_day(request.GET.get("day"))
    span = request.GET.get("span") if request.GET.get("span") in SPANS else "day"
    days = SPANS[span]
    start, end = day_window(day, days)
    filter_form, page, page_query = _bookings_page(request, group, start, end)
    context = {
        "group": group,
        "span": span,
        "day": day,
        "start": start,
        "end": end,
        "zone": zone_name(),
        "filter_form": filter_form,
        "page": page,
        "page_query": page_query,
    }
    if request.htmx and request.htmx.target == "bookings":
        return render(request, "dashboard/_bookings.html", context)
    balance = group_balance(group=group, start=start, end=end)
    rules = list(
        SettlementRule.objects.filter(group=group).prefetch_related("targets__parent").order_by("-effective_from")
    )
    current = next((rule for rule in rules if rule.effective_until is None), None)
    step = dt.timedelta(days=days)
    context.update(
        {
            "balance": balance,
            "quarters": len(balance["intervals"]),
            "chart": balance_chart_data(balance),
            "rules": rules,
            "previous_url": _group_url(group, day=(day - step).isoformat(), span=span),
            "next_url": _group_url(group, day=(day + step).isoformat(), span=span),
            "day_url": _group_url(group, day=day.isoformat()),
            "week_url": _group_url(group, day=day.isoformat(), span="week"),
            "finalize_form": FinalizeUntilForm(initial={"until": local_input_value(end)}),
            "has_pending": _pending_bookings(group).exists(),
            "fully_closed": _fully_closed(group),
            "rule_refusal": _rule_change_refusal(group, _next_rule_change(current)),
            "export_end": (day + step - dt.timedelta(days=1)),
            "last_quarter": end - dt.timedelta(minutes=15),
            "supply": consumer_supply(group, start=start, end=end, span=span)
            if group.kind == GroupKind.CONSUMER
            else None,
        }
    )
    return render(request, "dashboard/group.html", context)


@tenant_view
@require_http_methods(["GET", "POST"])
def group_create(request, tenant):
    form = GroupCreateForm(request.POST or None, initial={"kind": GroupKind.CONSUMER})
    if request.method == "POST" and form.is_valid():
        try:
            group = group_services.group_create(tenant=tenant, actor=request.user, **form.cleaned_data)
        except BkmError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, _("Group %(code)s created.") % {"code": group.code})
            return redirect(_group_url(group))
    status = 400 if form.errors else 200
    return render(
        request,
        "dashboard/group_form.html",
        {"form": form, "title": _("New balance group"), "zone": zone_name()},
        status=status,
    )


@tenant_view
@require_http_methods(["GET", "POST"])
def group_edit(request, tenant, ref):
    group = get_group_or_404(tenant, ref)
    initial = {
        "code": group.code,
        "name": group.name,
        "valid_from": group.valid_from,
        "valid_until": group.valid_until,
        "metering_point": group.metering_point or "",
    }
    form = GroupEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {key: value for key, value in form.cleaned_data.items() if value != initial[key]}
        try:
            if changes:
                group = group_services.group_update(group=group, actor=request.user, **changes)
        except BkmError as error:
            apply_service_error(form, error)
        else:
            if changes:
                changed = ", ".join(plain_label(form, name) for name in form.fields if name in changes)
                text = _("Group %(code)s saved (%(changed)s).") % {"code": group.code, "changed": changed}
            else:
                text = _("Group %(code)s saved (nothing changed).") % {"code": group.code}
            messages.success(request, text)
            return redirect(_group_url(group))
    context = {
        "form": form,
        "group": group,
        "title": _("Edit %(code)s") % {"code": group.code},
        "zone": zone_name(),
    }
    return render(request, "dashboard/group_form.html", context, status=400 if form.errors else 200)


@tenant_view
@require_http_methods(["GET", "POST"])
def group_close(request, tenant, ref):
    group = get_group_or_404(tenant, ref)
    form = GroupCloseForm(request.POST or None, closed_until=group.closed_until)
    if request.method == "POST" and form.is_valid():
        try:
            group = group_services.group_close(group=group, actor=request.user, until=form.cleaned_data["until"])
        except BkmError as error:
            apply_service_error(form, error, detail_field="until")
        else:
            messages.success(
                request,
                _("%(code)s is closed until %(until)s.")
                % {"code": group.code, "until": local_zone(group.closed_until)},
            )
            return redirect(_group_url(group))
    context = {"form": form, "group": group, "zone": zone_name(), "fully_closed": _fully_closed(group)}
    return render(request, "dashboard/group_close.html", context, status=400 if form.errors else 200)


@tenant_view
@require_http_methods(["GET", "POST"])
def group_finalize(request, tenant, ref):
    group = get_group_or_404(tenant, ref)
    form = FinalizeUntilForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        until = form.cleaned_data["until"]
        try:
            count = bookings_finalize_until(group=group, actor=request.user, until=until)
        except BkmError as error:
            apply_service_error(form, error)
        else:
            text = ngettext(
                "%(count)s booking of %(code)s ending by %(until)s is now final.",
                "%(count)s bookings of %(code)s ending by %(until)s are now final.",
                count,
            ) % {"count": count, "code": group.code, "until": local_zone(until)}
            messages.success(request, text)
            return redirect_back(request, fallback=_group_url(group))
    if request.method == "GET":
        form = FinalizeUntilForm(initial={"until": local_input_value(next_quarter_after(timezone.now()))})
    context = {"form": form, "group": group, "zone": zone_name(), "has_pending": _pending_bookings(group).exists()}
    return render(request, "dashboard/group_finalize.html", context, status=400 if form.errors else 200)


def _target_route(form, by_id):
    """Where a refusal about the parents belongs: the parent whose code it names, else the first parent."""
    fields_by_code = {}
    for index in range(1, MAX_TARGETS + 1):
        parent = by_id.get(form.cleaned_data.get(f"parent_{index}") or "")
        if parent is not None:
            fields_by_code.setdefault(parent.code, f"parent_{index}")

    def route(message: str) -> str:
        for code, field in fields_by_code.items():
            if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", message):
                return field
        return "parent_1"

    return route


@tenant_view
@require_http_methods(["GET", "POST"])
def rule_edit(request, tenant, ref):
    group = get_group_or_404(tenant, ref)
    parents = BalanceGroup.objects.filter(tenant=tenant, kind=GroupKind.BALANCE).exclude(pk=group.pk).order_by("code")
    current = _current_rule(group)
    initial = {}
    if current is not None:
        initial["interval"] = current.interval
        for index, target in enumerate(current.targets.all()[:3], start=1):
            initial[f"parent_{index}"] = str(target.parent_id)
            initial[f"share_{index}"] = target.share
    else:
        initial["share_1"] = 10000
    form = RuleChangeForm(request.POST or None, parents=parents, initial=initial)
    if request.method == "POST" and form.is_valid():
        by_id = {str(parent.pk): parent for parent in parents}
        targets = [(by_id[parent], share) for parent, share in form.cleaned_data["targets"]]
        try:
            rule = rule_change(
                group=group,
                actor=request.user,
                targets=targets,
                interval=form.cleaned_data["interval"],
                effective_from=form.cleaned_data["effective_from"],
            )
        except BkmError as error:
            apply_service_error(form, error, field_map={"targets": _target_route(form, by_id)})
        else:
            messages.success(
                request,
                _("New rule for %(code)s takes effect at %(local)s, %(utc)s UTC.")
                % {
                    "code": group.code,
                    "local": local_zone(rule.takes_effect_at),
                    "utc": rule.takes_effect_at.astimezone(dt.UTC).strftime("%H:%M"),
                },
            )
            return redirect(_group_url(group))
    next_change = _next_rule_change(current)
    context = {
        "form": form,
        "group": group,
        "current": current,
        "zone": zone_name(),
        "next_change_local": next_change,
        "next_change_utc": next_change,
        "refusal": _rule_change_refusal(group, next_change),
        "first_rule": current is None and not SettlementRule.objects.filter(group=group).exists(),
    }
    return render(request, "dashboard/rule_form.html", context, status=400 if form.errors else 200)


@tenant_view
def group_balance_csv(request, tenant, ref):
    group = get_group_or_404(tenant, ref)
    first = parse_day(request.GET.get("from"))
    last = parse_day(request.GET.get("to"), default=first)
    if last < first:
        first, last = last, first
    last = min(last, first + dt.timedelta(days=366))
    resolution = request.GET.get("resolution") if request.GET.get("resolution") in ("15min", "1h", "1d") else "15min"
    start, end = day_window(first, (last - first).days + 1)
    balance = group_balance(group=group, start=start, end=end, resolution=resolution)
    filename = f"{group.code}_{first.isoformat()}_{last.isoformat()}_{resolution}.csv"
    return attachment(balance_csv(balance, group_code=group.code), filename=filename)
