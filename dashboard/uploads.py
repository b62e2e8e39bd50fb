"""Uploads are bounded while they stream in, not after they arrived."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class SizeLimitedUploadHandler(FileUploadHandler):
    """Stops taking an uploaded file once it passes ``UPLOAD_MAX_BYTES``.

    The rest of the file is read and discarded chunk by chunk, so memory stays bounded whatever
    its size; the request is marked (``upload_too_large``) so the form can say why the file is missing.
    """

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > settings.UPLOAD_MAX_BYTES:
            self.request.upload_too_large = True
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handlers build the file
