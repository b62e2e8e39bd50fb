"""Chart data for the dashboard's charts (drawn by static/js/bkm.js with Chart.js)."""

from core.quarters import site_zone


def balance_chart_data(balance: dict, series=("inflow", "outflow", "net")) -> dict:
    """Labels (local time), per-interval values and statuses of a ``group_balance`` result."""
    zone = site_zone()
    intervals = balance["intervals"]
    multi_day = len({interval["start"].astimezone(zone).date() for interval in intervals}) > 1
    label_format = "%a %d.%m. %H:%M" if multi_day else "%H:%M"
    data = {
        "labels": [interval["start"].astimezone(zone).strftime(label_format) for interval in intervals],
        "utc": [interval["start"].isoformat() for interval in intervals],
        "status": [interval["status"] for interval in intervals],
        "series": {},
    }
    for name in series:
        data["series"][name] = [interval[f"{name}_wh"] for interval in intervals]
    return data
