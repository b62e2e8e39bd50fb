"""The login page and the error pages in the operator's language."""

import pytest
from django.urls import reverse

from dashboard.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_login_page_speaks_german(client, operator):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="de">' in page
    assert "<h1>Anmelden</h1>" in page and "Benutzername" in page and "Passwort" in page
    assert "nur die Bilanzkreise ihrer eigenen Organisation" in page
    english = client.get(reverse("login")).content.decode()
    assert "<h1>Log in</h1>" in english and "Username" in english


def test_a_wrong_password_is_refused_in_german(client, operator):
    data = {"username": operator.username, "password": PASSWORD + "-wrong"}
    response = client.post(reverse("login"), data, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Bitte Benutzername und Passwort eingeben." in text


def test_the_error_pages_speak_german(client_in, site, settings):
    settings.DEBUG = False
    missing = client_in.get(reverse("dashboard:scheme", args=["NOPE"]), HTTP_ACCEPT_LANGUAGE="de")
    assert missing.status_code == 404
    text = missing.content.decode()
    assert "Nicht gefunden (404)" in text and "Zurück zur Übersicht" in text
    bad_month = reverse("dashboard:month-close", args=["GRID-CONNECTION", "2026-13"])
    bad = client_in.get(bad_month, HTTP_ACCEPT_LANGUAGE="de")
    assert bad.status_code == 400
    assert "Ungültige Anfrage (400)" in bad.content.decode()
