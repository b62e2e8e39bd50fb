"""JSON only, with a size limit answered by 413 in the error shape."""

from django.conf import settings
from rest_framework.parsers import JSONParser

from bkm.rest.errors import RequestTooLarge


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request is not None and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(f"The request body is larger than {limit} bytes; split it.")
        return super().parse(stream, media_type, parser_context)
