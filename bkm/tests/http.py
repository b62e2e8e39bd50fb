"""Calling a live test server over real HTTP, as an external system does."""

import datetime as dt
import json
import urllib.request


def call(base: str, key: str, method: str, path: str, body=None) -> dict:
    """``method`` ``base + path`` with the client's token and a JSON body; the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - the live test server, http only
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the live test server
        return json.loads(response.read())


def allocation_site(base: str, key: str) -> dict:
    """Groups and a dynamic scheme over HTTP: PV shared between two apartments, the grid for the rest.

    Returns the scheme. Four final quarter-hours then hold PV 80, APT-1 60, APT-2 40 Wh
    (``ALLOCATION_VALUES``): 48 and 32 Wh local, 12 and 8 Wh from the grid, per quarter-hour.
    """
    valid = "2026-03-01T23:00:00Z"
    for code, kind in (("GRID", "balance"), ("PV", "source"), ("APT-1", "consumer"), ("APT-2", "consumer")):
        call(base, key, "POST", "balance-groups/", {"code": code, "name": code, "kind": kind, "valid_from": valid})
    return call(
        base,
        key,
        "POST",
        "allocation-schemes/",
        {
            "code": "HAUS",
            "name": "Mieterstrom",
            "method": "dynamic",
            "sources": ["PV"],
            "consumers": [{"group": "APT-1", "share": 5000}, {"group": "APT-2", "share": 5000}],
            "surplus_to": "GRID",
            "residual_from": "GRID",
            "effective_from": valid,
        },
    )


ALLOCATION_HOUR = "start=2026-03-02T10:00:00Z&end=2026-03-02T11:00:00Z&resolution=1h"
ALLOCATION_VALUES = [
    {"group": group, "start": f"2026-03-02T10:{minute:02d}:00Z", "energy_wh": wh, "status": "final"}
    for minute in (0, 15, 30, 45)
    for group, wh in (("PV", 80), ("APT-1", 60), ("APT-2", 40))
]


def metering_point(code: str) -> str:
    return f"DE00HTTP{code.replace('-', ''):>25}".replace(" ", "0")


def allocation_values_as_mscons(base: str, key: str) -> bytes:
    """``ALLOCATION_VALUES`` as an MSCONS interchange, once the site's groups carry metering points."""
    from allocation.mscons.writer import Reading, write_interchange

    for code in ("PV", "APT-1", "APT-2"):
        call(base, key, "PATCH", f"balance-groups/{code}/", {"metering_point": metering_point(code)})
    readings = [
        Reading(
            metering_point(item["group"]),
            dt.datetime.fromisoformat(item["start"]),
            f"{item['energy_wh'] // 1000}.{item['energy_wh'] % 1000:03d}",
        )
        for item in sorted(ALLOCATION_VALUES, key=lambda item: (item["group"], item["start"]))
    ]
    return write_interchange([readings])


def post_mscons(base: str, key: str, data: bytes) -> dict:
    """The interchange to ``measurements/mscons`` as ``application/edifact``; the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - the live test server, http only
        base + "measurements/mscons",
        data=data,
        method="POST",
        headers={"Authorization": f"Token {key}", "Content-Type": "application/edifact"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the live test server
        return json.loads(response.read())


def assert_allocated_hour(base: str, key: str, answer: dict) -> None:
    """The hour of ``ALLOCATION_VALUES`` as the allocation read must show it, final."""
    (hour,) = answer["intervals"]
    assert (answer["status"], hour["gaps"]) == ("final", 0)
    codes = {g["id"]: g["code"] for g in call(base, key, "GET", "balance-groups/")["results"]}
    consumers = {codes[r["group"]]: (r["consumption_wh"], r["local_wh"], r["residual_wh"]) for r in hour["consumers"]}
    assert consumers == {"APT-1": (240, 192, 48), "APT-2": (160, 128, 32)}
    (pv,) = hour["sources"]
    assert (pv["generation_wh"], pv["surplus_wh"]) == (320, 0)
    assert {codes[a["consumer"]]: a["energy_wh"] for a in pv["allocated"]} == {"APT-1": 192, "APT-2": 128}
