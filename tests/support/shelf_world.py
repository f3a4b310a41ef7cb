"""A store shelf section drawn large, for the closed-loop bench: 4 m x 2.4 m at 1 mm a pixel.

Five shelves of packs (boxes, bags, bottles, tins, a row of small spice jars), each with a base
colour, a label band with its name, a logo and stripes, on boards with price tags; every product
has one to three facings side by side. Deterministic from a seed. One product is the target;
in look-alike shelves it has a neighbour of the same colour, size and layout whose label says
something else. `Shelf.pyramid` holds the picture at 1, 1/2, 1/4 and 1/8 size, so a camera far
away renders from a smaller copy (no aliasing, little CPU).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

from shelfsight.guide.box import PixelBox

SIZE = (4000, 2400)  # px = mm: width, height
AISLE_BGR = (96, 100, 104)  # what the camera sees beyond the shelf section
TOP, ROW_H, ROWS = 250, 400, 5  # the first shelf's top (mm), each shelf's height, shelves
BOARD_H = 45  # the shelf board with its price tags, at the bottom of each row
LEVELS = 4  # pyramid levels

# (kind, width range mm, height range mm) of the packs on each row, from the top.
ROW_KINDS = (
    ("boxes", (120, 220), (200, 320)),
    ("bags", (140, 230), (180, 300)),
    ("jars", (36, 46), (70, 100)),
    ("bottles", (70, 105), (220, 330)),
    ("tins", (70, 100), (100, 135)),
)
WORDS_A = ("OAT", "RICE", "CORN", "RYE", "SPELT", "BRAN", "MUESLI", "QUINOA", "BARLEY", "MILLET")
WORDS_B = ("CRUNCH", "FLAKES", "PUFFS", "BITES", "CLUSTERS", "CRISP", "HOOPS", "CRACKERS")
COLOURS = (  # BGR base colours: saturated packaging colours and a few pale ones
    (40, 50, 200), (40, 150, 40), (180, 90, 30), (30, 200, 230), (20, 130, 240),
    (140, 50, 140), (235, 235, 235), (40, 80, 120), (150, 150, 30), (160, 120, 230),
    (30, 30, 30), (90, 180, 200), (200, 170, 120), (60, 60, 150),
)  # fmt: skip


@dataclass(frozen=True)
class Pack:
    """One facing of a product on the shelf (panorama px)."""

    box: PixelBox
    product: int  # facings of one product share it
    name: str
    colour: tuple[int, int, int]
    row: int


@dataclass
class Shelf:
    pyramid: list[np.ndarray]  # BGR, full size then halves
    packs: list[Pack]
    target: int  # product id
    lookalike: int | None  # product id of the same-looking neighbour, if any

    def facings(self, product: int | None) -> list[Pack]:
        return [p for p in self.packs if p.product == product]

    @property
    def name(self) -> str:
        return self.facings(self.target)[0].name.lower()


def build_shelf(seed: int, target_row: str, lookalike: bool) -> Shelf:
    """A shelf from `seed`; the target is a product of the row of kind `target_row` (see
    ROW_KINDS), away from the section's ends, with a look-alike next to it if asked."""
    rng = random.Random(seed)
    image = np.full((SIZE[1], SIZE[0], 3), AISLE_BGR, np.uint8)
    cv2.rectangle(image, (0, TOP - 60), (SIZE[0], TOP + ROWS * ROW_H), (175, 180, 182), -1)
    _sign(image, rng)
    packs: list[Pack] = []
    product = 0
    row_of_target = next(i for i, kind in enumerate(ROW_KINDS) if kind[0] == target_row)
    chosen: tuple[int, int | None] | None = None
    for row, (kind, widths, heights) in enumerate(ROW_KINDS):
        top = TOP + row * ROW_H
        floor = top + ROW_H - BOARD_H
        cv2.rectangle(image, (0, floor), (SIZE[0], floor + BOARD_H), (215, 218, 220), -1)
        x = rng.randint(10, 60)
        row_products: list[int] = []
        while True:
            w, h = rng.randint(*widths), min(rng.randint(*heights), ROW_H - BOARD_H - 25)
            colour = rng.choice(COLOURS)
            name = f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}"
            facings = rng.choice((1, 1, 2, 2, 3))
            gap = rng.randint(4, 18)
            twin = lookalike and row == row_of_target and chosen is None and x > SIZE[0] * 0.3
            room = (SIZE[0] - 20 - x) // (w + gap) - (3 if twin else 0)
            if room < 1:
                break
            facings = min(facings, room)
            look = rng.random()  # the product's own drawing choices (logo, stripes, cap)
            products = [(product, name, facings)]
            if twin:  # the target (one facing) and its look-alike: the same but for the name
                other = name
                while other == name:
                    other = f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}"
                products = [(product, name, 1), (product + 1, other, rng.choice((1, 2)))]
                chosen = (product, product + 1)
                if rng.random() < 0.5:
                    products.reverse()
            for pid, label, count in products:
                for _ in range(count):
                    box = PixelBox(x, floor - h, w, h)
                    packs.append(Pack(box, pid, label, colour, row))
                    _draw_pack(image, box, colour, label, kind, random.Random(look))
                    x += w + gap
                _price_tag(image, packs[-1].box, floor, rng)
                row_products.append(pid)
            product += len(products)
            x += rng.randint(0, 30)
        if row == row_of_target and chosen is None:
            middle = [p for p in row_products if 0.25 < _x_of(packs, p) / SIZE[0] < 0.75]
            chosen = (rng.choice(middle or row_products), None)
    assert chosen is not None
    target, twin_id = chosen
    return Shelf(_pyramid(image), packs, target, twin_id)


def _x_of(packs: list[Pack], product: int) -> float:
    return next(p.box.cx for p in packs if p.product == product)


def _pyramid(image: np.ndarray) -> list[np.ndarray]:
    levels = [image]
    for _ in range(LEVELS - 1):
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


def _draw_pack(
    image: np.ndarray,
    box: PixelBox,
    colour: tuple[int, int, int],
    name: str,
    kind: str,
    rng: random.Random,
) -> None:
    """A pack front: base colour, a darker side, a label band with the name, a logo, stripes.
    `rng` is the product's own: every facing of a product (and its look-alike) looks the same."""
    x0, y0, w, h = int(box.x), int(box.y), int(box.w), int(box.h)
    x1, y1 = x0 + w, y0 + h
    dark = tuple(int(c * 0.6) for c in colour)
    if kind in ("bottles", "jars"):  # a neck and a cap
        neck = max(4, w // 3)
        cap = tuple(int(c) for c in rng.choice(COLOURS))
        cv2.rectangle(image, (x0 + neck, y0), (x1 - neck, y0 + h // 6), cap, -1)
        y0 += h // 6
    cv2.rectangle(image, (x0, y0), (x1, y1), colour, -1)
    cv2.rectangle(image, (x1 - max(2, w // 12), y0), (x1, y1), dark, -1)
    accent = rng.choice(COLOURS)
    for k in range(rng.randint(0, 3)):  # stripes
        sy = y0 + (k + 1) * (y1 - y0) // 5
        cv2.rectangle(image, (x0, sy), (x1 - w // 12, sy + max(2, h // 30)), accent, -1)
    band_top, band_h = y0 + (y1 - y0) * 2 // 5, max(8, (y1 - y0) // 4)
    band = (250, 250, 245) if sum(colour) < 450 else (40, 40, 40)
    ink = (30, 30, 30) if band[0] > 128 else (240, 240, 240)
    cv2.rectangle(image, (x0 + w // 14, band_top), (x1 - w // 8, band_top + band_h), band, -1)
    _fit_text(image, name, (x0 + w // 14 + 2, band_top, w - w // 14 - w // 8 - 4, band_h), ink)
    logo = (x0 + w // 3, y0 + (y1 - y0) // 5)
    cv2.circle(image, logo, max(3, w // 7), accent, -1, cv2.LINE_AA)
    cv2.circle(image, logo, max(2, w // 14), band, -1, cv2.LINE_AA)


def _fit_text(
    image: np.ndarray, text: str, area: tuple[int, int, int, int], ink: tuple[int, int, int]
) -> None:
    """`text` in two lines if it has two words, as large as fits `area` (x, y, w, h)."""
    x, y, w, h = area
    lines = text.split()
    font = cv2.FONT_HERSHEY_SIMPLEX
    widest = max(cv2.getTextSize(line, font, 1.0, 2)[0][0] for line in lines)
    scale = max(0.2, min(w / widest, h / len(lines) / 26))
    thickness = max(1, round(scale * 2))
    for k, line in enumerate(lines):
        base = y + round((k + 0.85) * h / len(lines))
        cv2.putText(image, line, (x, base), font, scale, ink, thickness, cv2.LINE_AA)


def _price_tag(image: np.ndarray, box: PixelBox, floor: int, rng: random.Random) -> None:
    x = int(box.x)
    cv2.rectangle(image, (x, floor + 5), (x + 70, floor + 40), (250, 250, 250), -1)
    price = f"{rng.randint(0, 9)}.{rng.randint(10, 99)}"
    cv2.putText(image, price, (x + 6, floor + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)


def _sign(image: np.ndarray, rng: random.Random) -> None:
    """The aisle sign above the shelves."""
    cv2.rectangle(image, (300, 40), (SIZE[0] - 300, 170), (60, 40, 30), -1)
    for k, word in enumerate(("BREAKFAST", "BAKING", "WORLD FOODS")):
        x = 500 + k * 1100 + rng.randint(0, 80)
        cv2.putText(image, word, (x, 135), cv2.FONT_HERSHEY_SIMPLEX, 3.0, (240, 240, 240), 6)
