"""Renders the bundled eval suite: shelf scenes with known positions, and their cases.

    .venv/bin/python -m scripts.make_eval_suite        # rewrites shelfsight/eval/suites/shelf

Each scene is drawn with OpenCV the way tests/support/scene.py draws the demo shelf (flat
packages with large labels on grey shelves), at 1024 x 576; the JPEGs stay small (~40 kB).
Cases ask for items on every shelf and at every position, for look-alike packages (same colour
and shape, a different word on the label) and for items that are not in view at all. The
output is deterministic, so re-running it changes nothing unless this file changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "shelfsight" / "eval" / "suites" / "shelf"
SIZE = (1024, 576)
BGR = {
    "red": (40, 40, 200),
    "orange": (30, 130, 240),
    "yellow": (40, 210, 235),
    "green": (60, 160, 60),
    "blue": (190, 110, 40),
    "purple": (150, 60, 130),
    "brown": (40, 70, 120),
    "white": (235, 235, 235),
    "black": (30, 30, 30),
    "beige": (160, 200, 225),
    "pink": (180, 140, 240),
    "grey": (150, 150, 150),
}
POSITIONS = ("left", "middle", "right")

# Scenes: shelves from the top, three packages each (left, middle, right): (label, colour).
SCENES: dict[str, list[list[tuple[str, str]]]] = {
    "bakery": [
        [("WHITE BREAD", "white"), ("RYE BREAD", "brown"), ("GLUTEN FREE BREAD", "green")],
        [("BAGELS", "beige"), ("WRAPS", "white"), ("CRUMPETS", "yellow")],
        [("CRACKERS", "green"), ("RICE CAKES", "white"), ("GLUTEN FREE CRACKERS", "green")],
    ],
    "breakfast": [
        [("OATS", "orange"), ("MUESLI", "beige"), ("GRANOLA", "brown")],
        [("CORN FLAKES", "yellow"), ("RICE PUFFS", "blue"), ("BRAN FLAKES", "brown")],
        [("HONEY", "yellow"), ("STRAWBERRY JAM", "red"), ("RASPBERRY JAM", "red")],
        [("PORRIDGE", "purple"), ("GLUTEN FREE OATS", "orange"), ("TEA", "black")],
    ],
    "dairy": [
        [("MILK", "white"), ("OAT MILK", "blue"), ("SOY MILK", "green")],
        [("BUTTER", "yellow"), ("OAT MILK BARISTA", "blue"), ("CREAM", "white")],
        [("YOGURT", "pink"), ("GREEK YOGURT", "blue"), ("KEFIR", "purple")],
        [("CHEDDAR", "orange"), ("FETA", "white"), ("LACTOSE FREE MILK", "white")],
    ],
    "pasta": [
        [("SPAGHETTI", "blue"), ("PENNE", "blue"), ("GLUTEN FREE PASTA", "yellow")],
        [("RICE", "white"), ("BROWN RICE", "brown"), ("COUSCOUS", "orange")],
        [("TOMATO SAUCE", "red"), ("PESTO", "green"), ("OLIVE OIL", "green")],
    ],
    "snacks": [
        [("SALTED CRISPS", "red"), ("PRETZELS", "brown"), ("POPCORN", "yellow")],
        [("DARK CHOCOLATE", "black"), ("MILK CHOCOLATE", "purple"), ("NUT BAR", "orange")],
        [("PEANUTS", "red"), ("CASHEWS", "beige"), ("UNSALTED PEANUTS", "red")],
        [("RAISINS", "purple"), ("DATES", "brown"), ("DRIED MANGO", "orange")],
    ],
    "drinks": [
        [("COLA", "red"), ("DIET COLA", "grey"), ("LEMONADE", "yellow")],
        [("APPLE JUICE", "green"), ("ORANGE JUICE", "orange"), ("SPARKLING WATER", "blue")],
        [("STILL WATER", "blue"), ("ICED TEA", "brown"), ("GINGER BEER", "beige")],
    ],
}

# (scene, item asked for, how it is asked); an item not in the scene is asked as absent.
ASKED: list[tuple[str, str, str]] = [
    ("bakery", "GLUTEN FREE BREAD", "Where is the gluten-free bread?"),
    ("bakery", "GLUTEN FREE CRACKERS", "Where are the gluten-free crackers?"),
    ("bakery", "BAGELS", "Can you see bagels?"),
    ("bakery", "SOURDOUGH", "Is there any sourdough bread here?"),
    ("breakfast", "OATS", "Where are the oats? Not the gluten-free ones."),
    ("breakfast", "GLUTEN FREE OATS", "Where are the gluten-free oats?"),
    ("breakfast", "RASPBERRY JAM", "I need raspberry jam."),
    ("breakfast", "RICE PUFFS", "Where are the rice puffs?"),
    ("breakfast", "COFFEE", "Where is the coffee?"),
    ("dairy", "OAT MILK BARISTA", "Where is the barista oat milk?"),
    ("dairy", "LACTOSE FREE MILK", "Do you see lactose-free milk?"),
    ("dairy", "KEFIR", "Where is the kefir?"),
    ("dairy", "GOAT CHEESE", "Is there goat cheese?"),
    ("pasta", "GLUTEN FREE PASTA", "Where is the gluten-free pasta?"),
    ("pasta", "BROWN RICE", "Where is the brown rice?"),
    ("pasta", "PESTO", "Find me the pesto."),
    ("pasta", "LASAGNE SHEETS", "Where are the lasagne sheets?"),
    ("snacks", "UNSALTED PEANUTS", "Where are the unsalted peanuts?"),
    ("snacks", "DARK CHOCOLATE", "Where is the dark chocolate?"),
    ("snacks", "DRIED MANGO", "Is there dried mango?"),
    ("snacks", "ALMONDS", "Where are the almonds?"),
    ("drinks", "DIET COLA", "Where is the diet cola?"),
    ("drinks", "SPARKLING WATER", "Where is the sparkling water?"),
    ("drinks", "ENERGY DRINK", "Any energy drinks here?"),
]


def draw(shelves: list[list[tuple[str, str]]]) -> np.ndarray:
    width, height = SIZE
    image = np.full((height, width, 3), (70, 80, 90), np.uint8)
    shelf_h = height // len(shelves)
    for row, products in enumerate(shelves):
        top = row * shelf_h
        cv2.rectangle(image, (0, top + shelf_h - 10), (width, top + shelf_h), (40, 50, 60), -1)
        slot = width // len(products)
        for col, (label, colour) in enumerate(products):
            x0, x1 = col * slot + slot // 10, col * slot + slot * 9 // 10
            y0, y1 = top + shelf_h // 8, top + shelf_h - 12
            cv2.rectangle(image, (x0, y0), (x1, y1), BGR[colour], -1)
            cv2.rectangle(image, (x0, y0), (x1, y1), (20, 20, 20), 2)
            dark = colour in ("black", "purple", "brown", "blue")
            ink = (255, 255, 255) if dark else (20, 20, 20)
            words = label.split()
            lines = [" ".join(words[:2]), " ".join(words[2:])] if len(words) > 2 else [label]
            for k, line in enumerate(lines):
                y = y0 + (y1 - y0) // 2 + (k - (len(lines) - 1) / 2) * 30
                cv2.putText(image, line, (x0 + 10, int(y) + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                            ink, 2, cv2.LINE_AA)  # fmt: skip
    return image


def where(shelves: list[list[tuple[str, str]]], item: str) -> dict[str, object]:
    for row, products in enumerate(shelves):
        for col, (label, colour) in enumerate(products):
            if label == item:
                return {"present": True, "shelf": row + 1, "position": POSITIONS[col],
                        "colour": colour}  # fmt: skip
    return {"present": False}


def main() -> None:
    (OUT / "pictures").mkdir(parents=True, exist_ok=True)
    for name, shelves in SCENES.items():
        cv2.imwrite(str(OUT / "pictures" / f"{name}.jpg"), draw(shelves),
                    [cv2.IMWRITE_JPEG_QUALITY, 80])  # fmt: skip
    cases = []
    for scene, item, question in ASKED:
        shelves = SCENES[scene]
        slug = item.lower().replace(" ", "-")
        case = {"id": f"{scene}-{slug}", "picture": f"pictures/{scene}.jpg", "question": question}
        cases.append({**case, "shelves": len(shelves), **where(shelves, item)})
    text = json.dumps({"cases": cases}, indent=1) + "\n"
    (OUT / "cases.json").write_text(text, encoding="utf-8")
    print(f"{len(cases)} cases, {len(SCENES)} pictures in {OUT}")


if __name__ == "__main__":
    main()
