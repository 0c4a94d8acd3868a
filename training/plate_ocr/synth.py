"""Synthetic licence plates for training the plate recogniser.

Each sample is a plate rendered from scratch with PIL: a layout (US with a
state name and a slogan, EU with the blue band, plain single-line and
stacked ones), a text in one of several national formats, a font from
Debian's font packages, then degraded the way a camera and the text
detector degrade real plates (perspective, rotation, blur, motion, noise,
JPEG, low resolution, glare, shadow, dirt, bolts, frames, tight and loose
crops). The label is the plate's characters, A-Z and 0-9 only.

Everything follows from the seed: `render(seed)` gives the same image and
label on every run. No real plate image is used anywhere.
"""

from __future__ import annotations

import functools
import io
import math
import os
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Bump when the output of render() changes for the same seed.
GENERATOR_VERSION = "6"

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
HEIGHT = 48
WIDTH = 128

FONT_ROOT = "/usr/share/fonts"
# Bold faces close to the ones plates use (plain, condensed, monospaced,
# rounded), from Debian's fonts-dejavu-core, fonts-liberation(2),
# fonts-urw-base35, fonts-freefont-ttf, fonts-croscore, fonts-open-sans,
# fonts-roboto-unhinted, fonts-noto-core, fonts-bebas-neue,
# fonts-yanone-kaffeesatz, fonts-b612, fonts-dosis, fonts-cabin, fonts-lato,
# fonts-hack, fonts-league-spartan, fonts-adf-switzera,
# fonts-adf-universalis, fonts-routed-gothic, fonts-opendin and
# fonts-league-mono. Not only bold ones: many US plates are stamped in a
# narrow face of medium weight (the routed-signage kind of Routed Gothic),
# whose straight-sided W the bold faces never show; DIN is the German
# plates' family.
TRAIN_FONTS = [
    "truetype/dejavu/DejaVuSans-Bold.ttf",
    "truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "truetype/liberation2/LiberationSans-Bold.ttf",
    "truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "truetype/liberation2/LiberationMono-Bold.ttf",
    "truetype/freefont/FreeSansBold.ttf",
    "truetype/freefont/FreeMonoBold.ttf",
    "truetype/croscore/Arimo-Bold.ttf",
    "truetype/croscore/Cousine-Bold.ttf",
    "truetype/open-sans/OpenSans-Bold.ttf",
    "truetype/open-sans/OpenSans-CondBold.ttf",
    "truetype/noto/NotoSans-Bold.ttf",
    "opentype/urw-base35/NimbusSans-Bold.otf",
    "opentype/urw-base35/NimbusSansNarrow-Bold.otf",
    "opentype/urw-base35/NimbusMonoPS-Bold.otf",
    "truetype/roboto/unhinted/RobotoTTF/Roboto-Bold.ttf",
    "opentype/bebas-neue/BebasNeue-Bold.otf",
    "opentype/yanone-kaffeesatz/YanoneKaffeesatz-Bold.otf",
    "opentype/b612/B612-Bold.otf",
    "opentype/b612/B612Mono-Bold.otf",
    "opentype/dosis/Dosis-ExtraBold.otf",
    "opentype/cabin/Cabin-Bold.otf",
    "truetype/lato/Lato-Heavy.ttf",
    "truetype/hack/Hack-Bold.ttf",
    "opentype/league-spartan/LeagueSpartan-Bold.otf",
    "truetype/adf/SwitzeraADF-Bold.otf",
    "truetype/adf/SwitzeraADF-BoldCond.otf",
    "truetype/adf/UniversalisADFStd-BoldCond.otf",
    "truetype/routed-gothic/routed-gothic.ttf",
    "truetype/routed-gothic/routed-gothic-narrow.ttf",
    "truetype/opendin/OSP-DIN.ttf",
    "opentype/league-mono/LeagueMono-NarrowMedium.otf",
    "opentype/league-mono/LeagueMono-CondensedSemiBold.otf",
    "opentype/urw-base35/NimbusSansNarrow-Regular.otf",
    "truetype/dejavu/DejaVuSansCondensed.ttf",
    "truetype/adf/UniversalisADFStd-Cond.otf",
]
# Never used for training: the test that the model reads plates it was not
# trained on renders with these.
HELD_OUT_FONTS = [
    "truetype/roboto/unhinted/RobotoTTF/Roboto-Black.ttf",
    "truetype/open-sans/OpenSans-ExtraBold.ttf",
]

US_STATES = [
    "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO", "CONNECTICUT",
    "DELAWARE", "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA", "IOWA",
    "KANSAS", "KENTUCKY", "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN",
    "MINNESOTA", "MISSISSIPPI", "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA",
    "NEW HAMPSHIRE", "NEW JERSEY", "NEW MEXICO", "NEW YORK", "NORTH CAROLINA",
    "NORTH DAKOTA", "OHIO", "OKLAHOMA", "OREGON", "PENNSYLVANIA", "RHODE ISLAND",
    "SOUTH CAROLINA", "SOUTH DAKOTA", "TENNESSEE", "TEXAS", "UTAH", "VERMONT", "VIRGINIA",
    "WASHINGTON", "WEST VIRGINIA", "WISCONSIN", "WYOMING",
]
SLOGANS = [
    "THE GOLDEN STATE", "EMPIRE STATE", "SUNSHINE STATE", "LAND OF LINCOLN",
    "THE LONE STAR STATE", "GARDEN STATE", "EXPERIENCE WONDER", "LIVE FREE OR DIE",
    "GREAT LAKES STATE", "THE BEEHIVE STATE", "dmv.ca.gov", "PEACH STATE",
    "FIRST IN FLIGHT", "GRAND CANYON STATE", "VACATIONLAND", "FAMOUS POTATOES",
    "10,000 LAKES", "WILD WONDERFUL", "PURE MICHIGAN", "VIRGINIA IS FOR LOVERS",
]
EU_COUNTRIES = ["F", "D", "I", "NL", "E", "PL", "B", "P", "A", "CZ", "S", "FIN", "GB", "IRL"]

# Formats: L letter, D digit, space and '-' are drawn but not labelled.
US_FORMATS = [
    "DLLLDDD", "LLLDDDD", "LLL DDDD", "LLL DDD", "DDD LLL", "LL DDDDD", "DLLDDD",
    "LLLDDD", "DDDLLL", "LDDDLL", "DDDDDD", "LLLLDD", "DLLL DDD", "LL DLLLD", "DDDLLLD",
]
EU_FORMATS = [
    "LL-DDD-LL",   # France, Italy
    "LL DDD LL",
    "L LL DDDD",   # Germany
    "LL LL DDD",
    "DD-LLL-D",    # Netherlands
    "LL-DDD-L",
    "DDDD LLL",    # Spain
    "LL DDDDD",    # Poland
    "LLDD LLL",    # United Kingdom
    "DD-LL-DD",    # Portugal
    "LLL DDD",     # Sweden, Finland
    "L DDDD LL",
]
OTHER_FORMATS = ["LLDDLLDDDD", "DDD-DD", "LL-DDDD", "DLL-DDDD", "LDDDDD", "DDLLDD"]

# An emblem slot in a plate's text: a picture as tall as the characters (a
# state outline, a flag, a fruit, a wheelchair, a star) between character
# groups or at either end of the line, drawn but never read. Real US plates
# carry them where a separator would be and beside the characters; version 2
# drew only small marks there, and the model read the big ones as characters.
EMBLEM = "*"
EMBLEM_ADVANCE = 0.85  # of the font size
SYMBOL_FONT = "truetype/dejavu/DejaVuSans.ttf"
# Pictograms from DejaVu Sans (fonts-dejavu-core), none of them a letter or digit.
SYMBOLS = "\u267f\u2605\u2606\u2665\u2666\u2663\u2660\u2708\u2693\u2618\u273f\u2744\u2600\u2691\u271a\u262e\u265e\u265c\u2602\u2603\u263a\u2654\u269c\u2698\u2740\u2726\u2742\u25c6\u25cf\u25b2\u2b1f"


@dataclass
class Sample:
    image: Image.Image  # grayscale, HEIGHT x WIDTH
    label: str  # A-Z 0-9


@dataclass(frozen=True)
class Face:
    """How a plate's own typeface differs from the font it is drawn with.
    Plate faces are monospaced (every character in the same cell, so W and
    M come out narrow: version 4 read narrow Ws as H), and US faces draw
    the digit 0 as round as the letter O, the digit 1 as a bare bar like
    the letter I, and the 4 open at the top with a near-vertical left
    stroke; the label stays the character meant, never the glyph drawn."""

    mono: bool = False
    zero_as_o: bool = False
    one_as_i: bool = False
    open_four: bool = False
    # The open 4's shape: its left stroke's slant and where its crossbar
    # and its stem start, as fractions of the glyph box.
    four_slant: float = 0.1
    four_bar: float = 0.66
    four_stem: float = 0.68

    def glyph(self, c: str) -> str:
        if c == "0" and self.zero_as_o:
            return "O"
        if c == "1" and self.one_as_i:
            return "I"
        return c

    def alters(self, c: str) -> bool:
        return self.mono or self.glyph(c) != c or (c == "4" and self.open_four)


def _face(rng: random.Random, kind: str) -> Face | None:
    us = kind in ("us", "stacked")
    face = Face(
        mono=kind != "eu" and rng.random() < 0.35,
        zero_as_o=us and rng.random() < 0.3,
        one_as_i=us and rng.random() < 0.25,
        open_four=rng.random() < (0.25 if us else 0.1),
        four_slant=rng.uniform(0.0, 0.25),
        four_bar=rng.uniform(0.6, 0.74),
        four_stem=rng.uniform(0.62, 0.76),
    )
    return face if face.mono or face.zero_as_o or face.one_as_i or face.open_four else None


def font_paths(held_out: bool = False) -> list[str]:
    names = HELD_OUT_FONTS if held_out else TRAIN_FONTS
    paths = [os.path.join(FONT_ROOT, name) for name in names]
    found = [path for path in paths if os.path.exists(path)]
    if not found:
        raise SystemExit(
            "no fonts found under /usr/share/fonts; run scripts/train-plate-ocr, which installs them"
        )
    return found


def plate_text(rng: random.Random, fmt: str) -> str:
    out = []
    for c in fmt:
        if c == "L":
            out.append(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ" if rng.random() < 0.8 else ALPHABET[10:]))
        elif c == "D":
            out.append(rng.choice("0123456789"))
        else:
            out.append(c)
    return "".join(out)


def label_of(text: str) -> str:
    return "".join(c for c in text if c in ALPHABET)


def _colour(rng: random.Random, light: bool) -> tuple[int, int, int]:
    if light:
        base = rng.randint(190, 255)
        return tuple(max(0, min(255, base + rng.randint(-25, 10))) for _ in range(3))
    base = rng.randint(0, 80)
    tint = rng.choice([(0, 0, 0), (0, 0, 90), (90, 0, 0), (0, 60, 0)])
    return tuple(min(255, base + t) for t in tint)


@functools.lru_cache(maxsize=4096)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _fit_font(path: str, text: str, box_w: int, box_h: int, spacing: float, face: Face | None = None
              ) -> tuple[ImageFont.FreeTypeFont, int]:
    """The largest size at which `text` fits the box; its width with spacing."""
    size = box_h
    while size > 6:
        font = _font(path, size)
        width = _text_width(font, text, spacing, face)
        bbox = font.getbbox("A0")
        if width <= box_w and (bbox[3] - bbox[1]) <= box_h:
            return font, width
        size = int(size * 0.92)
    font = _font(path, 6)
    return font, _text_width(font, text, spacing, face)


def _advance(font: ImageFont.FreeTypeFont, c: str, face: Face | None = None) -> float:
    if c == EMBLEM:
        return EMBLEM_ADVANCE * font.size
    if face is None:
        return font.getlength(c)
    if face.mono and c != " ":
        return font.getlength("0")
    return font.getlength(face.glyph(c))


def _text_width(font: ImageFont.FreeTypeFont, text: str, spacing: float, face: Face | None = None) -> int:
    advance = sum(_advance(font, c, face) for c in text)
    return int(advance + spacing * font.size * max(0, len(text) - 1))


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font, fill, spacing: float,
               rng: random.Random | None = None, face: Face | None = None) -> tuple[int, int, int, int]:
    """Draws character by character (for the spacing); returns the ink box.
    With `rng`, a gap (space) may get a mark as plates have there: a dot, a
    dash, a diamond or a small emblem, none of which is read. With `face`,
    characters are drawn in the plate's face (see Face)."""
    x, y = xy
    left, top, right, bottom = 10**9, 10**9, -(10**9), -(10**9)
    for c in text:
        if c != " ":
            if c == EMBLEM:
                box = _draw_emblem(draw, x, y, font, fill, rng or random.Random(0))
            elif face is not None and face.alters(c):
                box = _draw_glyph(draw, x, y, c, font, fill, face)
            else:
                box = draw.textbbox((x, y), c, font=font)
                draw.text((x, y), c, font=font, fill=fill)
            left, top = min(left, box[0]), min(top, box[1])
            right, bottom = max(right, box[2]), max(bottom, box[3])
        elif rng is not None and rng.random() < 0.5 and top < bottom:
            gap = font.getlength(c) + spacing * font.size
            cx, cy = x + gap / 2, (top + bottom) / 2
            mark = rng.choice(["dot", "dash", "diamond", "emblem"])
            if mark == "dot":
                r = max(1.5, gap * 0.15)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
            elif mark == "dash":
                draw.rectangle([cx - gap * 0.3, cy - max(1, gap * 0.06), cx + gap * 0.3, cy + max(1, gap * 0.06)],
                               fill=fill)
            elif mark == "diamond":
                r = max(2.0, gap * 0.22)
                draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
            else:
                rx, ry = gap * rng.uniform(0.3, 0.6), (bottom - top) * rng.uniform(0.25, 0.5)
                draw.polygon([(cx + rx * rng.uniform(-1, 1), cy + ry * rng.uniform(-1, 1)) for _ in range(5)],
                             fill=fill)
        x += _advance(font, c, face) + spacing * font.size
    return left, top, right, bottom


def _draw_glyph(draw: ImageDraw.ImageDraw, x: float, y: float, c: str, font, fill, face: Face
                ) -> tuple[int, int, int, int]:
    """Draws `c` at (x, y) in the plate's face; returns its ink box."""
    g = face.glyph(c)
    box = font.getbbox(g)
    gw, gh = max(1, box[2] - box[0]), max(1, box[3] - box[1])
    mask = Image.new("L", (gw + 2, gh + 2), 0)
    ImageDraw.Draw(mask).text((1 - box[0], 1 - box[1]), g, font=font, fill=255)
    if c == "4" and face.open_four:
        mask = _open_four(mask, face)
    dx = box[0] - 1
    if face.mono:
        cell = font.getlength("0")
        if mask.width > cell * 0.98:
            mask = mask.resize((max(1, int(cell * 0.95)), mask.height), Image.Resampling.BILINEAR)
        dx = (cell - mask.width) / 2
    ox, oy = int(round(x + dx)), int(round(y + box[1] - 1))
    draw.bitmap((ox, oy), mask, fill=fill)
    return ox, oy, ox + mask.width, oy + mask.height


def _open_four(mask: Image.Image, face: Face) -> Image.Image:
    """A 4 open at the top, as on Illinois' and other US plates: a left
    stroke falling nearly straight to the crossbar and a stem that does not
    meet it, drawn with the stroke width of the font's own 4."""
    ink = np.asarray(mask) > 127
    columns = ink.sum(axis=0)
    if columns.max() == 0:
        return mask
    # The stem is the run of columns with the most ink; its width is the stroke.
    stroke = max(1, int((columns > 0.6 * columns.max()).sum()))
    stroke = min(stroke, max(1, mask.width // 3))
    w, h = mask.width, mask.height
    half = stroke / 2
    out = Image.new("L", mask.size, 0)
    draw = ImageDraw.Draw(out)
    bar_y = h * face.four_bar
    stem_x = w * face.four_stem
    left_x = half + 1
    draw.line([(left_x + face.four_slant * w, half + 1), (left_x, bar_y)], fill=255, width=stroke)
    draw.line([(left_x - half, bar_y), (w - 1, bar_y)], fill=255, width=stroke)
    draw.line([(stem_x, h * face.four_slant * 0.8 + half), (stem_x, h - half - 1)], fill=255, width=stroke)
    return out


def _draw_emblem(draw: ImageDraw.ImageDraw, x: float, y: float, font, fill, rng: random.Random
                 ) -> tuple[int, int, int, int]:
    """A picture in an emblem slot at (x, y), about as tall as the
    characters of `font` there; returns its box."""
    cap = draw.textbbox((x, y), "A0", font=font)
    slot_w = EMBLEM_ADVANCE * font.size
    height = (cap[3] - cap[1]) * rng.uniform(0.55, 1.1)
    cx = x + slot_w / 2 + rng.uniform(-0.1, 0.1) * slot_w
    cy = (cap[1] + cap[3]) / 2 + rng.uniform(-0.1, 0.1) * (cap[3] - cap[1])
    # Emblems are often in another colour than the characters: on the mask
    # the squeezed text is drawn on, a weaker value is a lighter shade.
    if isinstance(fill, int):
        fill = rng.randint(110, 255)
    else:
        fill = rng.choice([fill, (200, 40, 40), (230, 140, 30), (30, 90, 170), (40, 130, 60)])
    kind = rng.choice(["symbol", "symbol", "outline", "flag", "fruit"])
    if kind == "symbol":
        sfont = _font(os.path.join(FONT_ROOT, SYMBOL_FONT), max(6, int(height * 1.15)))
        symbol = rng.choice(SYMBOLS)
        box = draw.textbbox((0, 0), symbol, font=sfont)
        sw, sh = box[2] - box[0], box[3] - box[1]
        ox, oy = cx - sw / 2 - box[0], cy - sh / 2 - box[1]
        draw.text((ox, oy), symbol, font=sfont, fill=fill)
        return int(ox + box[0]), int(oy + box[1]), int(ox + box[2]), int(oy + box[3])
    rx, ry = min(slot_w * 0.5, height * rng.uniform(0.35, 0.6)), height / 2
    if kind == "outline":
        # A state's outline: a lumpy polygon.
        points = [(cx + rx * math.cos(a) * rng.uniform(0.6, 1), cy + ry * math.sin(a) * rng.uniform(0.6, 1))
                  for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(5, 12)))]
        draw.polygon(points, fill=fill)
    elif kind == "flag":
        # A shield or flag with stripes or quarters.
        draw.rectangle([cx - rx, cy - ry, cx + rx, cy + ry], outline=fill, width=max(1, int(rx * 0.15)))
        for i in range(rng.randint(1, 4)):
            yy = cy - ry + (i + 0.5) * 2 * ry / 4
            draw.rectangle([cx - rx, yy, cx + rx, yy + max(1, ry * 0.2)], fill=fill)
    else:
        # A round fruit with a leaf.
        draw.ellipse([cx - rx, cy - ry * 0.8, cx + rx, cy + ry], fill=fill)
        draw.ellipse([cx, cy - ry, cx + rx * 0.6, cy - ry * 0.6], fill=fill)
    return int(cx - rx), int(cy - ry), int(cx + rx), int(cy + ry)


def _with_emblems(rng: random.Random, text: str, kind: str) -> str:
    """Puts emblem slots into a plate's text: in a gap between character
    groups (a space, or where letters turn to digits) and at the ends."""
    if kind not in ("us", "plain") or rng.random() > 0.35:
        return text
    where = rng.choices(["gap", "left", "right"], weights=[6, 3, 1])[0]
    if where == "left":
        return EMBLEM + " " * rng.randint(0, 1) + text
    if where == "right":
        return text + " " * rng.randint(0, 1) + EMBLEM
    gaps = [i for i, c in enumerate(text) if c == " "]
    if gaps:
        i = rng.choice(gaps)
        return text[:i] + EMBLEM + text[i + 1:]
    turns = [i for i in range(1, len(text)) if text[i - 1].isdigit() != text[i].isdigit()]
    if not turns:
        return text
    i = rng.choice(turns)
    return text[:i] + EMBLEM + text[i:]


SIDE_WORDS = ["US", "USA", "VET", "DV", "TRK", "MC", "HC", "DIS", "APP", "SEN", "CITY", "PUB", "FARM",
              "TAXI", "BUS", "COMM", "MSC", "ARMY", "NAVY", "LTD", "GOV", "FIRE"]


def _draw_side_tag(img: Image.Image, box: tuple[int, int, int, int], font: str, fg, bg, rng: random.Random
                   ) -> tuple[int, int, int, int]:
    """Draws beside the registration what US plates put there: small
    characters stacked one above the other (a class or county code, a
    veteran's or a dealer's mark), a word turned on its side ("US", "VET"),
    or a small sticker with a number; returns its ink box. None of it is
    read: registrations are listed, searched and matched without it, and
    since version 4 the generator labels the registration alone (version 3
    read two stacked characters as the first two, and the model read every
    small mark at the left of real plates as characters)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw = ImageDraw.Draw(img)
    colour = fg if rng.random() < 0.7 else rng.choice([(190, 30, 30), (30, 80, 170), (20, 110, 50)])
    style = rng.choices(["stack", "vertical", "sticker"], weights=[5, 3, 2])[0]
    if style == "stack":
        n = rng.choice([2, 2, 3])
        chars = "".join(rng.choice(ALPHABET[10:] if rng.random() < 0.8 else ALPHABET) for _ in range(n))
        sfont, _ = _fit_font(font, "W", w, int(h / n * rng.uniform(0.75, 0.95)), 0)
        for i, c in enumerate(chars):
            cb = draw.textbbox((0, 0), c, font=sfont)
            cx = x0 + (w - (cb[2] - cb[0])) // 2 - cb[0]
            cy = y0 + int(i * h / n) + (int(h / n) - (cb[3] - cb[1])) // 2 - cb[1]
            draw.text((cx, cy), c, font=sfont, fill=colour)
        return x0, y0, x1, y1
    if style == "vertical":
        word = rng.choice(SIDE_WORDS)
        mask = Image.new("L", (h, w), 0)
        wfont, ww = _fit_font(font, word, int(h * rng.uniform(0.6, 0.95)), int(w * 0.85), 0.02)
        wb = wfont.getbbox(word)
        ImageDraw.Draw(mask).text(((h - ww) // 2, (w - (wb[3] - wb[1])) // 2 - wb[1]), word, font=wfont, fill=255)
        mask = mask.rotate(rng.choice([90, 270]), expand=True)
        img.paste(Image.new("RGB", mask.size, colour), (x0, y0), mask)
        return x0, y0, x1, y1
    sh = int(h * rng.uniform(0.4, 0.9))
    sy = y0 + rng.randint(0, h - sh)
    draw.rectangle([x0, sy, x1, sy + sh], fill=rng.choice([(200, 30, 30), (30, 120, 200), (240, 200, 0), bg]))
    if rng.random() < 0.7:
        word = rng.choice([str(rng.randint(0, 99)).zfill(2), rng.choice(SIDE_WORDS), str(rng.randint(1, 12))])
        sfont, sw = _fit_font(font, word, w - 2, max(6, sh // 2), 0)
        draw.text((x0 + (w - sw) // 2, sy + sh // 4), word, font=sfont, fill=_colour(rng, light=False))
    return x0, sy, x1, sy + sh


def _plate(rng: random.Random, font: str, fonts: list[str]) -> tuple[Image.Image, str, tuple[int, int, int, int]]:
    """A clean plate: its RGB picture, its text, the main text's ink box."""
    kind = rng.choices(["us", "eu", "plain", "stacked"], weights=[44, 28, 10, 18])[0]
    spacing = rng.uniform(-0.02, 0.15)
    # Half the size of a real plate in millimetres: enough pixels for the
    # 48-pixel-high model input, and fast to transform.
    if kind == "eu":
        w, h = 260, rng.randint(52, 62)
        fmt = rng.choice(EU_FORMATS)
    elif kind == "us" or kind == "stacked":
        w, h = 240, rng.randint(117, 130)
        fmt = rng.choice(US_FORMATS)
    else:
        w, h = rng.choice([(240, 120), (260, 57), (200, 100)])
        fmt = rng.choice(OTHER_FORMATS + US_FORMATS)
    text = _with_emblems(rng, plate_text(rng, fmt), kind)
    face = _face(rng, kind)
    dark_plate = rng.random() < 0.08
    bg = _colour(rng, light=not dark_plate)
    if kind == "us" and rng.random() < 0.2:
        bg = rng.choice([(250, 225, 90), (200, 225, 250), (245, 245, 235), (235, 240, 255)])
    fg = _colour(rng, light=dark_plate)
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.35:
        # A gradient or a picture-like background band.
        band = Image.linear_gradient("L").resize((w, h)).rotate(rng.choice([0, 90, 180, 270]))
        tint = Image.new("RGB", (w, h), _colour(rng, light=not dark_plate))
        img = Image.composite(tint, img, band.point(lambda v: int(v * rng.uniform(0.2, 0.6))))
        draw = ImageDraw.Draw(img)
    if rng.random() < 0.4:
        # Pictures on the plate (a horse, a tree, a state seal): shapes behind the text.
        for _ in range(rng.randint(1, 3)):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            rx, ry = rng.uniform(0.05, 0.25) * w, rng.uniform(0.1, 0.4) * h
            # Muted against the plate, so the characters drawn over it stay readable.
            level = rng.randint(130, 235) if not dark_plate else rng.randint(20, 110)
            shade = tuple(max(0, min(255, level + rng.randint(-30, 30))) for _ in range(3))
            points = [(cx + rx * math.cos(a) * rng.uniform(0.4, 1), cy + ry * math.sin(a) * rng.uniform(0.4, 1))
                      for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(3, 9)))]
            draw.polygon(points, fill=shade)
    if rng.random() < 0.7:
        border = rng.randint(1, 4)
        draw.rectangle([border // 2, border // 2, w - border // 2, h - border // 2], outline=fg, width=border)

    left_margin = int(w * 0.05)
    right_margin = int(w * 0.05)
    top, bottom = int(h * 0.12), int(h * 0.88)
    if kind == "eu":
        band_w = int(h * 0.45)
        draw.rectangle([0, 0, band_w, h], fill=(20, 50, 160))
        cx, cy, r = band_w // 2, int(h * 0.33), int(h * 0.18)
        for i in range(12):
            a = 2 * math.pi * i / 12
            sx, sy = cx + r * math.cos(a), cy + r * math.sin(a)
            draw.ellipse([sx - 1, sy - 1, sx + 1, sy + 1], fill=(250, 210, 0))
        country = rng.choice(EU_COUNTRIES)
        cfont, _ = _fit_font(font, country, band_w - 6, int(h * 0.32), 0)
        draw.text((4, int(h * 0.58)), country, font=cfont, fill=(255, 255, 255))
        left_margin = band_w + int(w * 0.03)
        top, bottom = int(h * 0.1), int(h * 0.9)
    elif kind in ("us", "stacked"):
        header = rng.choice(US_STATES)
        if rng.random() < 0.5:
            header = header.title()
        # State names are often in another face than the characters.
        hfont, hw = _fit_font(rng.choice(fonts) if rng.random() < 0.5 else font, header, int(w * 0.8),
                              int(h * rng.uniform(0.12, 0.2)), 0.02)
        draw.text(((w - hw) // 2, int(h * 0.04)), header, font=hfont, fill=_colour(rng, light=dark_plate))
        if rng.random() < 0.7:
            slogan = rng.choice(SLOGANS)
            sfont, sw = _fit_font(font, slogan, int(w * 0.7), int(h * 0.1), 0.02)
            draw.text(((w - sw) // 2, int(h * 0.84)), slogan, font=sfont, fill=_colour(rng, light=dark_plate))
        top, bottom = int(h * rng.uniform(0.2, 0.27)), int(h * rng.uniform(0.78, 0.86))
        if rng.random() < 0.4:
            # Registration stickers in the corners, often with a month or a year on them.
            for sx in (int(w * 0.04), int(w * 0.84)):
                if rng.random() < 0.6:
                    sy = int(h * 0.06) if rng.random() < 0.7 else int(h * 0.78)
                    box = [sx, sy, sx + int(w * 0.12), sy + int(h * 0.16)]
                    draw.rectangle(box, fill=rng.choice([(200, 30, 30), (30, 120, 200), (240, 200, 0), bg]))
                    if rng.random() < 0.6:
                        word = rng.choice(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                           "NOV", "DEC", str(rng.randint(0, 99)).zfill(2), f"{rng.randint(1, 12)}-{rng.randint(0, 99):02d}"])
                        sfont, _ = _fit_font(font, word, box[2] - box[0] - 2, box[3] - box[1] - 2, 0)
                        draw.text((box[0] + 1, box[1]), word, font=sfont, fill=_colour(rng, light=False))

    box_w = w - left_margin - right_margin
    box_h = bottom - top
    if kind == "stacked":
        # A tag beside the registration, mostly at the left: small characters
        # one above the other, a word on its side or a small sticker. Not
        # read (see _draw_side_tag); a text detector's line crop takes it in.
        tag_w = int(box_w * rng.uniform(0.1, 0.16))
        gap = int(box_w * rng.uniform(0.01, 0.05))
        main_w = box_w - tag_w - gap
        mfont, mw = _fit_font(font, text, main_w, box_h, spacing, face)
        if rng.random() < 0.8:
            tag_x, x0 = left_margin, left_margin + tag_w + gap + (main_w - mw) // 2
        else:
            tag_x, x0 = left_margin + box_w - tag_w, left_margin + (main_w - mw) // 2
        tag = _draw_side_tag(img, (tag_x, top, tag_x + tag_w, bottom), font, fg, bg, rng)
        ink = _draw_text(draw, (x0, top), text, mfont, fg, spacing, rng, face)
        ink = (min(ink[0], tag[0]), min(ink[1], tag[1]), max(ink[2], tag[2]), max(ink[3], tag[3]))
    else:
        # Plate faces are often narrower than any font at hand: half the
        # plates draw the text wider and squeeze it to the box.
        squeeze = rng.uniform(0.6, 1.0) if rng.random() < 0.5 else 1.0
        wide_w = int(box_w / squeeze)
        mfont, mw = _fit_font(font, text, wide_w, box_h, spacing, face)
        asc = mfont.getbbox("A0")
        x0 = (wide_w - mw) // 2
        y0 = (box_h - (asc[3] - asc[1])) // 2 - asc[1]
        mask = Image.new("L", (wide_w, box_h), 0)
        wide_ink = _draw_text(ImageDraw.Draw(mask), (x0, y0), text, mfont, 255, spacing, rng, face)
        mask = mask.resize((box_w, box_h), Image.Resampling.BILINEAR)
        img.paste(Image.new("RGB", mask.size, fg), (left_margin, top), mask)
        ink = (left_margin + int(wide_ink[0] * squeeze), top + wide_ink[1],
               left_margin + int(math.ceil(wide_ink[2] * squeeze)), top + wide_ink[3])
    if kind == "us" and rng.random() < 0.4:
        # Bolts at the top.
        for bx in (int(w * 0.25), int(w * 0.75)):
            r = rng.randint(2, 5)
            draw.ellipse([bx - r, int(h * 0.06) - r + 3, bx + r, int(h * 0.06) + r + 3],
                         fill=rng.choice([(150, 150, 150), (90, 90, 90), bg]))
    if kind in ("us", "stacked"):
        # The label, not the picture: US plates draw O and 0 alike (see
        # Face), states do not issue two registrations that differ only
        # there, and US lists write the round character as 0 (so does the
        # evaluation data: plates-us has no O at all). Since version 5 a
        # letter O on a US plate is labelled 0.
        text = text.replace("O", "0")
    return img, text, ink


def _perspective(img: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    w, h = img.size
    d = lambda: rng.uniform(-strength, strength)  # noqa: E731
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(d() * w, d() * h), (w + d() * w, d() * h), (w + d() * w, h + d() * h), (d() * w, h + d() * h)]
    matrix = []
    for (x, y), (u, v) in zip(dst, src):
        matrix.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        matrix.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(matrix, dtype=np.float64)
    b = np.array([p for uv in src for p in uv], dtype=np.float64)
    try:
        coeffs = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return img
    return img.transform((w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR)


FRAME_WORDS = ["TOYOTA", "HONDA OF CITY", "AUTO MALL", "MOTORS", "FORD", "CHEVROLET", "NISSAN",
               "CARS.COM", "555-0123", "AUTOHAUS", "GARAGE", "KIA", "BMW", "DEALER"]


def _degrade(img: Image.Image, ink: tuple[int, int, int, int], rng: random.Random, font: str) -> Image.Image:
    w, h = img.size
    # Surroundings: the car around the plate, for loose crops.
    pad_x, pad_y = int(w * 0.25), int(h * 0.4)
    car = _colour(rng, light=rng.random() < 0.4)
    canvas = Image.new("RGB", (w + 2 * pad_x, h + 2 * pad_y), car)
    if rng.random() < 0.5:
        shade = Image.linear_gradient("L").resize(canvas.size).rotate(rng.choice([0, 90, 180, 270]))
        canvas = Image.composite(Image.new("RGB", canvas.size, _colour(rng, light=rng.random() < 0.4)),
                                 canvas, shade)
    if rng.random() < 0.5:
        # A plate frame: a dark band over the bottom (and sometimes top) edge.
        draw = ImageDraw.Draw(img)
        fc = _colour(rng, light=False)
        if rng.random() < 0.6:
            band_top = int(h * rng.uniform(0.83, 0.93))
            draw.rectangle([0, band_top, w, h], fill=fc)
            if rng.random() < 0.5 and h - band_top > 6:
                # A dealer's name on the frame: text the model must not read.
                word = rng.choice(FRAME_WORDS)
                wfont, ww = _fit_font(font, word, int(w * 0.6), h - band_top - 2, 0.02)
                draw.text(((w - ww) // 2, band_top), word, font=wfont, fill=_colour(rng, light=True))
        if rng.random() < 0.3:
            draw.rectangle([0, 0, w, int(h * rng.uniform(0.03, 0.1))], fill=fc)
    if rng.random() < 0.15:
        # Dirt.
        draw = ImageDraw.Draw(img)
        for _ in range(rng.randint(3, 20)):
            x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 3.5)
            g = rng.randint(40, 140)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(g, g - 10, g - 20))
    canvas.paste(img, (pad_x, pad_y))
    ink = (ink[0] + pad_x, ink[1] + pad_y, ink[2] + pad_x, ink[3] + pad_y)

    # Crop: the whole plate (tight or loose) or the text line as the text
    # detector cuts it.
    whole_plate = rng.random() < 0.5
    if whole_plate:
        l, t, r, b = pad_x, pad_y, pad_x + w, pad_y + h
        m = rng.uniform(-0.02, 0.12)
    else:
        l, t, r, b = ink
        m = rng.uniform(0.04, 0.18)
    mw, mh = (r - l) * m, (b - t) * m * 2
    jitter = lambda s: rng.uniform(-s, s)  # noqa: E731
    box = (l - mw + jitter(mw * 0.5 + 2), t - mh + jitter(mh * 0.5 + 2),
           r + mw + jitter(mw * 0.5 + 2), b + mh + jitter(mh * 0.5 + 2))
    if whole_plate:
        angle = rng.gauss(0, 3) if rng.random() < 0.7 else rng.uniform(-10, 10)
    else:
        # The text detector's crops are rectified: little rotation is left.
        angle = rng.gauss(0, 1.5)
    # Rotate and warp only the neighbourhood of the crop.
    bw, bh = box[2] - box[0], box[3] - box[1]
    grow = max(bw, bh) * 0.35
    region = (int(box[0] - grow), int(box[1] - grow), int(box[2] + grow), int(box[3] + grow))
    local = canvas.crop(region)
    local = local.rotate(angle, resample=Image.Resampling.BILINEAR)
    local = _perspective(local, rng, rng.uniform(0.0, 0.03))
    inner = (box[0] - region[0], box[1] - region[1], box[2] - region[0], box[3] - region[1])
    crop = local.crop(tuple(int(v) for v in inner))

    # Light: glare and shadow.
    arr = np.asarray(crop, dtype=np.float32)
    ch, cw = arr.shape[:2]
    if rng.random() < 0.15:
        yy, xx = np.mgrid[0:ch, 0:cw]
        cx, cy = rng.uniform(0, cw), rng.uniform(0, ch)
        radius = rng.uniform(0.2, 0.8) * max(cw, ch)
        glare = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2)) * rng.uniform(40, 120)
        arr = arr + glare[..., None]
    if rng.random() < 0.25:
        xx = np.arange(cw)[None, :].repeat(ch, 0)
        yy = np.arange(ch)[:, None].repeat(cw, 1)
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        edge = a * (xx - cw / 2) + b * (yy - ch / 2) + rng.uniform(-0.3, 0.3) * cw
        arr = arr * np.where(edge > 0, rng.uniform(0.35, 0.75), 1.0)[..., None]
    arr = arr * rng.uniform(0.7, 1.2) + rng.uniform(-30, 30)
    crop = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))

    # Camera: low resolution, blur, motion, noise, JPEG.
    if rng.random() < 0.5:
        # Lower resolution, never so low that a person could not read it.
        target_h = rng.randint(22, 60) if whole_plate else rng.randint(11, 30)
        scale = target_h / max(1, crop.height)
        small = crop.resize((max(4, int(crop.width * scale)), target_h), Image.Resampling.BILINEAR)
        crop = small.resize(crop.size, Image.Resampling.BILINEAR) if rng.random() < 0.5 else small
    if rng.random() < 0.35:
        crop = crop.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.15:
        k = np.zeros((5, 5))
        if rng.random() < 0.5:
            k[2, :] = 1
        else:
            np.fill_diagonal(k, 1)
        crop = crop.filter(ImageFilter.Kernel((5, 5), k.flatten().tolist(), scale=k.sum()))
    arr = np.asarray(crop, dtype=np.float32)
    arr = arr + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(0, 12), arr.shape)
    crop = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=rng.randint(15, 95))
        buffer.seek(0)
        crop = Image.open(buffer).convert("RGB")
    return crop


def to_input(img: Image.Image) -> Image.Image:
    """What the model sees: grayscale, stretched to WIDTH x HEIGHT whatever
    the crop's aspect ratio, so a whole two-line plate and a one-line text
    box both fill the input (kept at its aspect ratio, a whole plate's
    characters got too few pixels and time steps). The Rust recognizer does
    the same (services/recognizer/src/plate_ocr.rs)."""
    return img.convert("L").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)


def render(seed: int, held_out_fonts: bool = False) -> Sample:
    rng = random.Random(seed)
    fonts = font_paths(held_out_fonts)
    font = rng.choice(fonts)
    img, text, ink = _plate(rng, font, fonts)
    crop = _degrade(img, ink, rng, font)
    label = label_of(text)
    if crop.width < 2 or crop.height < 2:
        crop = img
    return Sample(image=to_input(crop), label=label)


if __name__ == "__main__":
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/plate-samples"
    os.makedirs(out, exist_ok=True)
    for seed in range(int(sys.argv[2]) if len(sys.argv) > 2 else 40):
        sample = render(seed)
        sample.image.save(os.path.join(out, f"{seed:04d}-{sample.label}.png"))
    print(f"samples in {out}")
