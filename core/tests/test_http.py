"""A chunked request body reaches the application whole (gunicorn sends no Content-Length for it)."""

import io
import json

from core.http import ChunkedBodies


def _seen_by_app():
    seen = {}

    def app(environ, start_response):
        seen["length"] = environ.get("CONTENT_LENGTH")
        seen["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [])
        return [b"ok"]

    return seen, app


def _call(wrapper, environ):
    answer = {}

    def start_response(status, headers):
        answer["status"] = status

    body = b"".join(wrapper(environ, start_response))
    return answer["status"], body


def test_a_chunked_body_is_handed_on_with_its_length():
    seen, app = _seen_by_app()
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b'{"bookings": []}')}
    assert _call(ChunkedBodies(app, limit=100), environ) == ("200 OK", b"ok")
    assert seen == {"length": "16", "body": b'{"bookings": []}'}


def test_a_chunked_body_over_the_limit_is_413_in_the_error_shape():
    seen, app = _seen_by_app()
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 101)}
    status, body = _call(ChunkedBodies(app, limit=100), environ)
    assert status.startswith("413") and json.loads(body)["code"] == "REQUEST_TOO_LARGE"
    assert seen == {}


def test_a_body_with_a_length_is_left_alone():
    seen, app = _seen_by_app()
    environ = {"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}
    _call(ChunkedBodies(app, limit=1), environ)
    assert seen == {"length": "2", "body": b"{}"}
