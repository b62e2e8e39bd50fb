"""HTTP plumbing below Django."""

import io
import json


class ChunkedBodies:
    """A WSGI wrapper: a request body sent with ``Transfer-Encoding: chunked`` reaches Django whole.

    gunicorn de-chunks such a body but passes no ``Content-Length``, and Django then reads an empty
    body. Here it is read up to ``limit`` bytes and handed on with its length; a larger one is
    answered 413 in the API's error shape, never read into memory beyond the limit.
    """

    def __init__(self, app, *, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(self.limit + 1)
            if len(body) > self.limit:
                error = {"code": "REQUEST_TOO_LARGE", "detail": f"The request body is larger than {self.limit} bytes."}
                start_response("413 Request Entity Too Large", [("Content-Type", "application/json")])
                return [json.dumps(error).encode()]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)
