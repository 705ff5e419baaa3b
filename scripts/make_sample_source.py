"""Regenerate mmpr/data/sample: synthetic shape images with questions whose answers are known by construction.

Usage: python scripts/make_sample_source.py
"""

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "mmpr" / "data" / "sample"
COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (230, 200, 40)}
SHAPES = ("circle", "square", "triangle")


def draw_shape(draw, shape, box, fill):
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)


def scene(rng, shapes):
    img = Image.new("RGB", (224, 168), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    for i, (shape, colour, size) in enumerate(shapes):
        x, y = 12 + (i % 4) * 52, 12 + (i // 4) * 78
        draw_shape(draw, shape, (x, y, x + size, y + size), COLOURS[colour])
    return img


def main():
    rng = random.Random(7)
    rows = []
    for _ in range(8):
        n = rng.randint(1, 6)
        shapes = [("circle", rng.choice(list(COLOURS)), 36) for _ in range(n)]
        shapes += [("square", "blue", 30) for _ in range(rng.randint(0, 2))]
        rng.shuffle(shapes)
        rows.append(dict(image=scene(rng, shapes), question="How many circles are there in the image?",
                         answer=str(n), answer_type="integer", choices=None))
    for _ in range(6):
        colour = rng.choice(list(COLOURS))
        shapes = [("square", colour, 44), ("circle", rng.choice([c for c in COLOURS if c != colour]), 30)]
        options = list(COLOURS)
        rows.append(dict(image=scene(rng, shapes), question="What colour is the square?",
                         answer=options[options.index(colour)], answer_type="multiple_choice", choices=options))
    for i in range(6):
        has = i % 2 == 0
        shapes = [("circle", "red", 30), ("square", "green", 30)] + ([("triangle", "yellow", 40)] if has else [])
        rows.append(dict(image=scene(rng, shapes), question="Is there a triangle in the image?",
                         answer="yes" if has else "no", answer_type="yes_no", choices=None))
    for _ in range(6):
        values = [rng.randint(1, 9) * 10 for _ in range(4)]
        img = Image.new("RGB", (224, 168), "white")
        draw = ImageDraw.Draw(img)
        for j, v in enumerate(values):
            draw.rectangle((20 + j * 50, 150 - v, 50 + j * 50, 150), fill=(60, 90, 200))
            draw.text((24 + j * 50, 152), str(v), fill="black")
        rows.append(dict(image=img, question="What is the value of the tallest bar?", answer=str(max(values)),
                         answer_type="chart", choices=None))
    for _ in range(4):
        shapes = [(rng.choice(SHAPES), rng.choice(list(COLOURS)), 40) for _ in range(3)]
        rows.append(dict(image=scene(rng, shapes), question="Describe the shapes in the image.", answer=None,
                         answer_type=None, choices=None))
    OUT.joinpath("images").mkdir(parents=True, exist_ok=True)
    with open(OUT / "sample.jsonl", "w") as f:
        for i, row in enumerate(rows):
            name = f"images/{i:03d}.png"
            row.pop("image").save(OUT / name, optimize=True)
            f.write(json.dumps({"id": f"{i:03d}", "image": name, **row}) + "\n")
    print(f"wrote {len(rows)} items to {OUT}")


if __name__ == "__main__":
    main()
