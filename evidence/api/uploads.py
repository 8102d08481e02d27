"""Streaming upload handling for attestation attachments: the SHA-256 of every uploaded file is computed
while its chunks arrive, and the per-file / per-request limits are enforced as bytes come in (a 413
before the rest of an oversized body is read), not after the whole body sits on disk."""

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from csm.api.errors import ApiError


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message, {"attachment_file": [message]})


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each file to a temporary file, hashing it on the way; ``file.sha256`` is set at the end."""

    def __init__(self, request=None):
        super().__init__(request)
        self.request_total = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.file_total = 0

    def receive_data_chunk(self, raw_data, start):
        self.file_total += len(raw_data)
        self.request_total += len(raw_data)
        if self.file_total > settings.CSM_EVIDENCE_MAX_FILE_BYTES:
            raise too_large(f"{self.file_name} is larger than the limit of "
                            f"{settings.CSM_EVIDENCE_MAX_FILE_BYTES} bytes per file")
        if self.request_total > settings.CSM_EVIDENCE_MAX_REQUEST_BYTES:
            raise too_large(f"the upload is larger than the limit of {settings.CSM_EVIDENCE_MAX_REQUEST_BYTES} "
                            "bytes per request")
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        upload = super().file_complete(file_size)
        upload.sha256 = self.digest.hexdigest()
        return upload


def install(request) -> None:
    """Use the hashing handler for this request; refuse a declared body over the request limit at once."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.CSM_EVIDENCE_MAX_REQUEST_BYTES:
        raise too_large(f"the request body ({declared} bytes) is larger than the limit of "
                        f"{settings.CSM_EVIDENCE_MAX_REQUEST_BYTES} bytes")
    django_request = getattr(request, "_request", request)
    django_request.upload_handlers = [HashingUploadHandler(django_request)]
