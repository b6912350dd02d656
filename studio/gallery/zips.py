"""A gallery as a zip file, written while it is sent: each image is read from storage in
chunks as the download reaches it, so no zip (and no whole image) is held in memory."""

from zipfile import ZIP_STORED

from zipstream import ZipStream


def gallery_zip(assets):
    """`assets` in order, named `01-<code>.png`, `02-…`. Stored, not deflated: the images
    are PNG, JPEG or WebP, already compressed. Sized, so the response can say its length."""
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    width = max(2, len(str(len(assets))))
    for number, asset in enumerate(assets, start=1):
        extension = asset.file.name.rsplit(".", 1)[-1]
        stream.add(_chunks(asset.file.storage, asset.file.name), f"{number:0{width}d}-{asset.code}.{extension}",
                   size=asset.size_bytes)
    return stream


def _chunks(storage, name):
    with storage.open(name, "rb") as file:
        yield from file.chunks()
