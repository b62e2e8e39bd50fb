"""Monthly statements on the dashboard: one consumer's (HTML, PDF, CSV), a site's month with one ZIP
of all PDFs, and the index to pick a site and a month."""

import datetime as dt

from django.core.exceptions import BadRequest
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _

from allocation.statements import consumer_statement, month_of, month_window, site_statements
from balance_groups.models import GroupKind
from core.errors import InvalidInput
from dashboard.statement_documents import statement_csv, statement_filename, statement_pdf, statements_zip
from dashboard.views.common import attachment, get_group_or_404, tenant_view, today_local, zone_name
from settlement.selectors import hierarchy_tree

LANGUAGES = ("de", "en")


def _month_or_400(month: str) -> tuple[dt.datetime, dt.datetime]:
    try:
        return month_window(month)
    except InvalidInput as error:
        raise BadRequest(error.detail) from None


def _neighbours(month: str) -> tuple[str, str]:
    year, number = int(month[:4]), int(month[5:])
    before = f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"
    after = f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"
    return before, after


def _month_context(month: str) -> dict:
    """The month and its neighbours, each also as its first instant (shown in the language's month format)."""
    before, after = _neighbours(month)
    return {
        "month": month,
        "month_start": _month_start(month),
        "before": before,
        "before_start": _month_start(before),
        "after": after,
        "after_start": _month_start(after),
    }


def _month_start(month: str) -> dt.datetime | None:
    """The month's first instant; None beyond the supported range (no link leads there)."""
    try:
        return month_window(month)[0]
    except InvalidInput:
        return None


def previous_month() -> str:
    return f"{today_local().replace(day=1) - dt.timedelta(days=1):%Y-%m}"


def _language(request) -> str:
    """The document's language: ``?language=de|en``, else the page's (the operator's) language."""
    chosen = request.GET.get("language")
    if chosen is None:
        return "de" if (translation.get_language() or "").startswith("de") else "en"
    if chosen not in LANGUAGES:
        raise BadRequest(_("language must be de or en."))
    return chosen


def _statement_or_404(tenant, code: str, month: str):
    group = get_group_or_404(tenant, code)
    _month_or_400(month)
    statement = consumer_statement(group=group, month=month) if group.kind == GroupKind.CONSUMER else None
    if statement is None:
        raise Http404(
            _("%(code)s takes part in no allocation scheme in %(month)s.") % {"code": group.code, "month": month}
        )
    return group, statement


def url_ref(code: str, pk) -> str:
    """A group in a URL by its code (readable), by id where the code holds a slash."""
    return str(pk) if "/" in code else code


def _site_name(statement: dict) -> str:
    return statement["scheme"]["name"]


@tenant_view
def statement_page(request, tenant, code, month):
    group, statement = _statement_or_404(tenant, code, month)
    context = {"group": group, "statement": statement, **_month_context(month)}
    context["ref"] = url_ref(group.code, group.pk)
    context["zone"] = zone_name()
    context["last_day"] = statement["days"][-1]["start"]
    return render(request, "dashboard/statement.html", context)


@tenant_view
def statement_pdf_view(request, tenant, code, month):
    language = _language(request)
    _group, statement = _statement_or_404(tenant, code, month)
    data = statement_pdf(statement, site_name=_site_name(statement), language=language)
    return attachment(data, filename=statement_filename(statement, language, "pdf"), content_type="application/pdf")


@tenant_view
def statement_csv_view(request, tenant, code, month):
    language = _language(request)
    _group, statement = _statement_or_404(tenant, code, month)
    return attachment(
        statement_csv(statement, language=language), filename=statement_filename(statement, language, "csv")
    )


def _site_or_404(tenant, ref: str, month: str):
    top = get_group_or_404(tenant, ref)
    _month_or_400(month)
    return top, site_statements(tenant=tenant, top=top, month=month)


@tenant_view
def site_month(request, tenant, ref, month):
    top, statements = _site_or_404(tenant, ref, month)
    totals = {
        key: sum(s[key] for s in statements)
        for key in ("consumption_wh", "local_wh", "residual_wh", "provisional_quarter_hours", "missing_quarter_hours")
    }
    priced = [s["amounts"]["total_eur"] for s in statements if s["amounts"] is not None]
    totals["total_eur"] = sum(priced) if priced else None
    for statement in statements:
        statement["ref"] = url_ref(statement["consumer_code"], statement["consumer"])
    context = {
        "top": top,
        "top_ref": url_ref(top.code, top.pk),
        **_month_context(month),
        "statements": statements,
        "totals": totals,
        "all_closed": bool(statements) and all(s["closed"] for s in statements),
        "all_final": bool(statements) and all(s["status"] == "final" for s in statements),
        "up_to_date": all(s["up_to_date"] for s in statements),
    }
    return render(request, "dashboard/site_month.html", context)


@tenant_view
def site_statements_zip(request, tenant, ref, month):
    language = _language(request)
    top, statements = _site_or_404(tenant, ref, month)
    if not statements:
        raise Http404(
            _("No consumer of %(code)s takes part in an allocation scheme in %(month)s.")
            % {"code": top.code, "month": month}
        )
    documents = [
        (statement_filename(s, language, "pdf"), statement_pdf(s, site_name=_site_name(s), language=language))
        for s in statements
    ]
    with translation.override(language):
        name = f"{_('Statements')}_{month}_{top.code}.zip"
    return attachment(statements_zip(documents), filename=name, content_type="application/zip")


def site_tops(tenant) -> list:
    """The top balances of the tenant's hierarchy today that have groups below them."""
    return [
        node.group
        for node in hierarchy_tree(tenant=tenant, at=dt.datetime.now(dt.UTC))
        if node.children and node.group.kind == GroupKind.BALANCE
    ]


@tenant_view
def statements_index(request, tenant):
    tops = site_tops(tenant)
    month = request.GET.get("month") or previous_month()
    site = request.GET.get("site")
    if site:
        _month_or_400(month)
        top = get_group_or_404(tenant, site)
        return redirect("dashboard:site-month", ref=url_ref(top.code, top.pk), month=month)
    return render(
        request,
        "dashboard/statements_index.html",
        {"tops": tops, "month": month, "current": month_of(dt.datetime.now(dt.UTC))},
    )
