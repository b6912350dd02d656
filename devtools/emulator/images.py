"""Stand-in image models for the Pixazo emulator.

render_fibo() plays Bria FIBO (text to image) and remove_background() plays Bria
RMBG 2.0. Neither is a neural network, but both produce real pictures: FIBO output is
a gradient "scene" with a distinct subject in the middle, and RMBG runs classical
segmentation (border-colour matte + OpenCV GrabCut) so the result has a genuinely
transparent background that the studio can display and test against.
"""

import colorsys
import hashlib
import io

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1024, 576),
    "4:3": (1024, 768),
    "9:16": (576, 1024),
}

# Anything bigger is almost certainly a decompression bomb, not a photo.
MAX_PIXELS = 40_000_000
# Segmentation runs on a copy no larger than this; the mask is scaled back up.
WORK_SIDE = 512


# --------------------------------------------------------------------------- FIBO


def _digest(*parts) -> bytes:
    return hashlib.sha256(repr(parts).encode("utf-8")).digest()


def _hsv(h, s, v):
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return np.array([r, g, b]) * 255.0


def _palette(prompt: str, guidance_scale: float):
    """Background and subject colours derived from the prompt alone.

    The background is pale and soft; the subject hues sit on the opposite side of the
    colour wheel and are saturated and darker, so the subject always stands out (which
    is also what lets remove_background find it). Higher guidance means punchier colours.
    """
    d = _digest("palette", prompt)
    hue = d[0] / 255.0
    punch = 0.55 + 0.04 * (guidance_scale - 5.0)  # 0.55 .. 0.75
    bg_top = _hsv(hue, 0.18 + d[1] / 255.0 * 0.12, 0.97)
    bg_bottom = _hsv(hue + 0.08, 0.30 + d[2] / 255.0 * 0.15, 0.85)
    subject = [
        _hsv(hue + 0.5 + (d[3 + i] / 255.0 - 0.5) * 0.3, punch + 0.2, 0.35 + 0.35 * d[8 + i] / 255.0)
        for i in range(4)
    ]
    return bg_top, bg_bottom, subject


def _gradient(width, height, top, bottom, angle):
    """A smooth two-colour gradient along a direction given in radians."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs / width * np.sin(angle) + ys / height * np.cos(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = top[None, None, :] * (1 - t[..., None]) + bottom[None, None, :] * t[..., None]
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _draw_subject(draw, rng, width, height, colours, count):
    """Overlapping ellipses, polygons and rounded boxes clustered around the centre.

    Everything stays inside the central 70% of the frame so the border keeps the pure
    background colour.
    """
    cx, cy = width / 2, height / 2
    unit = min(width, height)
    for i in range(count):
        colour = tuple(int(c) for c in colours[i % len(colours)])
        ox, oy = rng.normal(0, unit * 0.07, size=2)
        rx, ry = rng.uniform(unit * 0.10, unit * 0.22, size=2)
        box = [cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry]
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            corners = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, size=corners))
            points = [(cx + ox + rx * np.cos(a), cy + oy + ry * np.sin(a)) for a in angles]
            draw.polygon(points, fill=colour)
        else:
            draw.rounded_rectangle(box, radius=int(min(rx, ry) * 0.4), fill=colour)


def render_fibo(prompt: str, seed: int, aspect_ratio: str, steps_num: int = 30, guidance_scale: float = 7.5) -> bytes:
    """A deterministic PNG for these generation parameters.

    Same inputs give identical bytes; the prompt picks the colours, and the seed (plus
    steps and guidance) picks the composition, so a different seed is a different picture.
    """
    if aspect_ratio not in SIZES:
        raise ValueError(f"unsupported aspect ratio {aspect_ratio!r}")
    width, height = SIZES[aspect_ratio]
    bg_top, bg_bottom, subject = _palette(prompt, float(guidance_scale))
    layout = _digest("layout", prompt, int(seed), aspect_ratio, int(steps_num), float(guidance_scale))
    rng = np.random.default_rng(int.from_bytes(layout, "big"))

    image = _gradient(width, height, bg_top, bg_bottom, angle=rng.uniform(-0.6, 0.6))
    # More denoising steps, a busier subject: between 4 and 9 shapes.
    count = 4 + min(5, int(steps_num) // 20) + int(rng.integers(0, 2))
    _draw_subject(ImageDraw.Draw(image), rng, width, height, subject, count)

    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


# --------------------------------------------------------------------------- RMBG


def _open_image(data: bytes) -> Image.Image:
    """Decode untrusted bytes, refusing bombs before any pixel is decompressed."""
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"input is not a readable image ({exc.__class__.__name__})") from None
    if width * height > MAX_PIXELS:
        raise ValueError(f"image is too large: {width}x{height} is over {MAX_PIXELS:,} pixels")
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            # Put existing transparency on white so hidden pixels don't look like subject.
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, (255, 255, 255))
            image.paste(rgba, mask=rgba.getchannel("A"))
        return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"input is not a readable image ({exc.__class__.__name__})") from None


def _border_ring(height, width, thickness):
    ring = np.zeros((height, width), bool)
    ring[:thickness, :] = ring[-thickness:, :] = True
    ring[:, :thickness] = ring[:, -thickness:] = True
    return ring


def _background_distance(pixels: np.ndarray, ring: np.ndarray):
    """Per-pixel colour distance from a background model fitted to the border.

    The model is a quadratic surface per channel, so smooth gradients and vignettes are
    matched, not just a flat colour. Returns the distance map and the border noise level.
    """
    height, width, _ = pixels.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs / width - 0.5, ys / height - 0.5
    basis = np.stack([np.ones_like(xs), xs, ys, xs * ys, xs * xs, ys * ys], axis=-1)
    coeffs, *_ = np.linalg.lstsq(basis[ring], pixels[ring], rcond=None)
    background = basis @ coeffs
    distance = np.linalg.norm(pixels - background, axis=-1)
    border = distance[ring]
    noise = float(np.median(border) + 3 * np.median(np.abs(border - np.median(border))))
    return distance, noise


def _initial_grabcut_mask(distance, noise, ring):
    """Seed GrabCut: border = sure background, far-from-background = probable subject."""
    low = max(noise * 1.5, 12.0)
    high = max(noise * 4.0, 40.0)
    mask = np.full(distance.shape, cv2.GC_PR_BGD, np.uint8)
    mask[distance > low] = cv2.GC_PR_FGD
    mask[distance > high] = cv2.GC_FGD
    mask[ring] = cv2.GC_BGD
    return mask


def _fallback_rect_mask(shape):
    """Nothing stands out from the border: assume a centred subject, let GrabCut decide."""
    height, width = shape
    mask = np.full(shape, cv2.GC_BGD, np.uint8)
    mask[height // 10 : height - height // 10, width // 10 : width - width // 10] = cv2.GC_PR_FGD
    return mask


def _segment(small: np.ndarray) -> np.ndarray:
    """Binary foreground mask (uint8 0/1) for a small RGB array."""
    height, width, _ = small.shape
    ring = _border_ring(height, width, max(2, min(height, width) // 64))
    distance, noise = _background_distance(small.astype(np.float32), ring)
    mask = _initial_grabcut_mask(distance, noise, ring)
    if not (mask == cv2.GC_FGD).any() and not (mask == cv2.GC_PR_FGD).any():
        mask = _fallback_rect_mask((height, width))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        pass  # GrabCut refuses degenerate (single-class) inputs; keep the matte as is.
    foreground = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    return _clean(foreground)


def _clean(foreground: np.ndarray) -> np.ndarray:
    """Drop speckles: keep connected regions at least 2% the size of the largest one."""
    kernel = np.ones((3, 3), np.uint8)
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count <= 1:
        return foreground
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= areas.max() * 0.02) + 1
    return np.isin(labels, keep).astype(np.uint8)


def _alpha_at_full_size(foreground: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale the mask back up and feather its edge by a pixel or two."""
    soft = cv2.GaussianBlur(foreground.astype(np.float32), (0, 0), sigmaX=0.8)
    alpha = cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR)
    # Stretch so the interior is fully opaque and the background fully transparent;
    # only the thin band along the edge stays partial.
    alpha = np.clip((alpha - 0.5) * 2.5 + 0.5, 0.0, 1.0)
    return (alpha * 255).round().astype(np.uint8)


def remove_background(data: bytes) -> bytes:
    """RGBA PNG of the input with its background made transparent."""
    image = _open_image(data)
    width, height = image.size
    scale = min(1.0, WORK_SIDE / max(width, height))
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR) if scale < 1 else image
    foreground = _segment(np.asarray(small))
    alpha = _alpha_at_full_size(foreground, width, height)

    rgba = np.dstack([np.asarray(image), alpha])
    rgba[alpha == 0, :3] = 0  # no stray colour hiding under fully transparent pixels
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG", compress_level=3)
    return out.getvalue()
