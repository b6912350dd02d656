"""A gallery as a zip file, written while it is sent: each image is read from storage in
chunks as the download reaches it, so no zip (and no whole image) is held in memory. From
a bucket too: the object's body is read as it arrives, never downloaded first (as
django-storages' S3File would, to a temporary file held in memory)."""

from zipfile import ZIP_STORED

from zipstream import ZipStream

from studio.library.media import in_bucket

CHUNK_BYTES = 64 * 1024


def gallery_zip(assets):
    """`assets` in order, named `01-<code>.png`, `02-…`. Stored, not deflated: the images
    are PNG, JPEG or WebP, already compressed. Sized, so the response can say its length."""
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    width = max(2, len(str(len(assets))))
    for number, asset in enumerate(assets, start=1):
        extension = asset.file.name.rsplit(".", 1)[-1]
        stream.add(_chunks(asset.file), f"{number:0{width}d}-{asset.code}.{extension}", size=asset.size_bytes)
    return stream


def _chunks(file):
    if in_bucket(file):
        body = file.storage.bucket.Object(file.name).get()["Body"]
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()
        return
    with file.storage.open(file.name, "rb") as local:
        yield from local.chunks(CHUNK_BYTES)
