"""Uploads are bounded before they are read: a web worker never holds more of a request
than the studio would take from it.

- A multipart body may carry UPLOAD_MAX_BYTES of files and DATA_UPLOAD_MAX_MEMORY_SIZE of
  other fields (Django's own limit for them). One that declares more in its
  Content-Length is refused before a byte of it is read, and file data that streams past
  UPLOAD_MAX_BYTES anyway stops the reading there. BoundedUploadHandler does both, first
  of FILE_UPLOAD_HANDLERS, for every view.
- A view that takes a file (`takes_upload`) checks who is asking, and the limits, before
  the body is read. Django's CSRF check reads a form's fields, so it runs after them, as
  Django's documentation on upload handlers advises (csrf_exempt outside, csrf_protect
  inside).
"""

from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt, csrf_protect

MB = 1024 * 1024
# Set on a request whose upload the handler refused; its fields and files are then only
# what was read before (nothing, when its Content-Length was over the limit).
REFUSED_ATTRIBUTE = "upload_refused"


def request_limit():
    """The most a request carrying a file may declare."""
    return settings.UPLOAD_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_message():
    return f"The image is larger than {settings.UPLOAD_MAX_BYTES // MB} MB."


class BoundedUploadHandler(FileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > request_limit():
            setattr(self.request, REFUSED_ATTRIBUTE, True)
            return QueryDict(encoding=encoding), MultiValueDict()  # and the body stays unread
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.UPLOAD_MAX_BYTES:
            setattr(self.request, REFUSED_ATTRIBUTE, True)
            raise StopUpload(connection_reset=True)  # read no further
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handlers keep the file


def takes_upload(allowed, refused):
    """For a view whose form carries a file: `allowed(request.membership)` may refuse
    (PermissionDenied, a 403) before anything is read; a body without a Content-Length
    (411) or over the limits (413) is answered by `refused(request, message, status)`
    without being read; only then come the CSRF check and the view."""

    def decorate(view):
        protected = csrf_protect(view)

        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                allowed(request.membership)
            except PermissionDenied:
                # Django's 403 page checks the CSRF token to render one, which reads a
                # form: it gets an empty one.
                request.POST = QueryDict()
                raise
            if not request.META.get("CONTENT_LENGTH"):
                return refused(request, "Send the upload with a Content-Length header.", 411)
            if not _read_within_limits(request):
                return refused(request, too_large_message(), 413)
            return protected(request, *args, **kwargs)

        return wrapper

    return decorate


def _read_within_limits(request):
    """Parse the body now, through BoundedUploadHandler; False if it refused the upload."""
    request.FILES  # noqa: B018 (reading the attribute parses the body)
    return not getattr(request, REFUSED_ATTRIBUTE, False)
