"""Folders of images (PNG, JPEG, BMP, PGM/PPM), decoded by Pillow through an allow-list of decoders only.

Every image's header is checked against a pixel budget before anything is decoded, so that a small
file declaring a huge image costs nothing.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from aekit.data.common import IMAGE_SUFFIXES, READ_SUFFIXES, Dataset, PixelNames, file_id, files_under, open_regular
from aekit.exceptions import InvalidInputError

# The only Pillow decoders an image file may reach, whatever its content says: Pillow picks the decoder
# from the bytes, not the name, and some (EPS, PDF) run external programs such as Ghostscript.
# "PPM" also reads PGM and PBM.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "PPM")
# Pixels (height x width) one image may declare, or --image-size ask for: 4096 x 4096. Checked on the
# header, before anything is decoded, so that a small file declaring a huge image costs nothing.
MAX_IMAGE_PIXELS = 4096 * 4096
# iter_chunks' chunks of images stay under this many bytes of float32, whatever chunk_rows asks.
IMAGE_CHUNK_BYTES = 256 * 2**20
# DecompressionBombError: Pillow refuses images of more than Image.MAX_IMAGE_PIXELS pixels.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_GRAY_MODES = ("1", "L", "LA", *_SIXTEEN_BIT_MODES)


def parse_image_size(text: str) -> tuple[int, int]:
    """Parse ``"HxW"`` (for example ``"28x28"``) into ``(H, W)``.

    Examples
    --------
    >>> parse_image_size("32x24")
    (32, 24)
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not match or 0 in (int(match[1]), int(match[2])):
        raise InvalidInputError(
            f"Invalid image size {text!r}: write it as HxW with positive whole numbers, e.g. 28x28."
        )
    return int(match[1]), int(match[2])


def check_image_size(image_size: tuple[int, int] | str) -> tuple[int, int]:
    """``(H, W)`` from "HxW" or a pair, refused beyond the pixel budget (one parser, one message for both).

    Examples
    --------
    >>> check_image_size((28, 28)), check_image_size("32x24")
    ((28, 28), (32, 24))
    """
    height, width = parse_image_size(image_size if isinstance(image_size, str) else "x".join(map(str, image_size)))
    if height * width > MAX_IMAGE_PIXELS:
        raise InvalidInputError(
            f"The image size {height}x{width} is {height * width:,} pixels, over "
            f"aekit's limit of {MAX_IMAGE_PIXELS:,} (4096x4096) per image. Choose a smaller --image-size."
        )
    return height, width


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, sorted by relative path; hidden files and folders are skipped.

    See :func:`aekit.data.common.files_under` for how the folder is walked.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.png", "a.png", ".hidden.png"):
    ...     Image.fromarray(np.zeros((2, 3), dtype=np.uint8)).save(folder / name)
    >>> [file.name for file in image_files(folder)]
    ['a.png', 'b.png']
    """
    return files_under(folder, IMAGE_SUFFIXES, "image")


def _bad_image(file: Path, error: Exception) -> InvalidInputError:
    return InvalidInputError(f"Cannot read image {file}: {str(error).rstrip('.')}. Replace or remove the file.")


@contextmanager
def _open_image(file: Path) -> Iterator[Image.Image]:
    """Open an image through the allowed decoders only, its size checked against the pixel budget."""
    with open_regular(file) as stream:
        try:
            with warnings.catch_warnings():  # Pillow's bomb warning: the stricter budget below decides
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(stream, formats=IMAGE_FORMATS)
        except Image.UnidentifiedImageError:
            raise InvalidInputError(
                f"Cannot read image {file}: its content is not a {', '.join(IMAGE_FORMATS)} image (whatever its "
                "name says), and aekit decodes no other format. Convert it to PNG, or remove it."
            ) from None
        except _IMAGE_ERRORS as error:
            raise _bad_image(file, error) from error
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InvalidInputError(
                    f"Image {file} declares {height}x{width} pixels (HxW), {width * height:,} in all: over aekit's "
                    f"limit of {MAX_IMAGE_PIXELS:,} (4096x4096) per image. Shrink it first, or remove it."
                )
            yield image


def _scan_images(folder: Path, image_size) -> tuple[list[Path], tuple[int, int, int]]:
    """Read the headers only: check sizes agree, decide gray (1 channel) or RGB (3); return the shape."""
    files = image_files(folder)
    if not files:
        raise InvalidInputError(
            f"Found no images in {folder} (looked for {', '.join(IMAGE_SUFFIXES)}, subfolders included). "
            f"Point to a folder of images, or to a file: {', '.join(READ_SUFFIXES)}."
        )
    color, first_size = False, None
    for file in files:
        try:
            with _open_image(file) as image:
                size, mode = image.size, image.mode
        except InvalidInputError:
            raise
        except _IMAGE_ERRORS as error:
            raise _bad_image(file, error) from error
        color = color or mode not in _GRAY_MODES
        first_size = first_size or size
        if image_size is None and size != first_size:
            first = f"{first_size[1]}x{first_size[0]}"
            raise InvalidInputError(
                f"Images in {folder} differ in size: {files[0].relative_to(folder)} is {first} and "
                f"{file.relative_to(folder)} is {size[1]}x{size[0]} (HxW). Resize them all with --image-size "
                f"HxW (Python: image_size=(H, W)), e.g. --image-size {first}."
            )
    height, width = image_size or (first_size[1], first_size[0])
    return files, (3 if color else 1, height, width)


def _decode_image(file: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image as float32 (C, H, W) in [0, 1], converted and resized to `shape`."""
    channels, height, width = shape
    try:
        with _open_image(file) as image:
            image.load()
            if image.mode in _SIXTEEN_BIT_MODES:
                planes = np.asarray(image, dtype=np.float32)[None] / 65535
            else:  # convert() drops alpha (LA -> L, RGBA -> RGB) and expands palettes
                image = image.convert("L" if channels == 1 else "RGB")
                planes = np.asarray(image, dtype=np.float32).reshape(image.height, image.width, -1)
                planes = planes.transpose(2, 0, 1) / 255
    except InvalidInputError:
        raise
    except _IMAGE_ERRORS as error:
        raise _bad_image(file, error) from error
    if len(planes) != channels:  # a 16-bit gray image among RGB ones
        planes = np.repeat(planes, channels, axis=0)
    if planes.shape[1:] != (height, width):
        planes = np.stack([np.asarray(Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR))
                           for plane in planes])
    return planes


def image_chunks(folder: Path, image_size, chunk_rows: int | None, *, first: int = 0, stop: int | None = None
                 ) -> Iterator[Dataset]:
    """Chunks of the images ``first`` to ``stop`` (all when None), in sorted order; only those are decoded.

    Every image's header is still read (sizes must agree across the whole folder, and one colour image
    makes all of them RGB), so that every range of one folder has the same shape.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.png", "a.png", ".hidden.png"):
    ...     Image.fromarray(np.zeros((2, 3), dtype=np.uint8)).save(folder / name)
    >>> [(chunk.ids.tolist(), chunk.image_shape) for chunk in image_chunks(folder, None, None, first=1)]
    [(['b.png'], (1, 2, 3))]
    """
    files, shape = _scan_images(folder, image_size)
    files = files[first:stop]
    columns = PixelNames(int(np.prod(shape)))
    ids = np.array([file_id(file, folder) for file in files])
    step = chunk_rows or max(len(files), 1)
    if chunk_rows is not None:  # bounded memory means bytes: 65,536 large images would be hundreds of GB
        step = max(1, min(step, IMAGE_CHUNK_BYTES // (4 * len(columns))))
    for start in range(0, len(files), step):
        batch = files[start:start + step]
        try:
            X = np.empty((len(batch), len(columns)), dtype=np.float32)
        except MemoryError:
            raise InvalidInputError(
                f"The {len(batch)} images in {folder} take {4 * len(batch) * len(columns) / 1e9:.1f} GB as float32 "
                f"({'x'.join(map(str, shape))} values each), more than this machine can hold. Use fewer or smaller "
                "images (--image-size HxW)."
            ) from None
        for row, file in enumerate(batch):
            X[row] = _decode_image(file, shape).ravel()
        yield Dataset(X, columns, ids[start:start + len(batch)], "file", shape)
