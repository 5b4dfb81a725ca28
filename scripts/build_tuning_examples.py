"""Build the preference and documents examples in assets/examples/ (deterministic; written for the project).

- kettlebird_preferences.csv (prompt, chosen, rejected): customer questions to Kettlebird support (the chat
  example's questions, scripts/build_examples.py), each with the support team's answer (chosen) and a reply the
  team would not send (rejected): the same answer with a wrong fact in it, a deflection to the manual, a curt
  reply without the house style, the answer to another question, or a guess that invents a policy.
- kettlebird_manuals/ : ten documents about the same kettles in the four formats the studio reads: two user
  guides as PDF, a quick start and the app guide as Word files, care, troubleshooting and FAQ pages in Markdown,
  warranty/delivery, safety notes and a brewing guide as plain text. The facts agree with the chat example, so a model adapted
  on the manuals can go on to chat tuning on the support answers.

    .venv/bin/python scripts/build_tuning_examples.py
"""
from __future__ import annotations

import csv
import random
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from build_examples import CLOSE, OPEN, TOPICS, chat_rows  # noqa: E402  (the chat example's questions, answers)
from tests.support_documents import wrapped, write_docx, write_pdf  # noqa: E402  (the PDF and Word writers)

OUT = ROOT / "assets" / "examples"

# --- preference pairs -----------------------------------------------------------------------------------------
# A wrong number for each fact the answers state: plausible, the same length, and false.
WRONG = {"3-year": "1-year", "45 days": "14 days", "5 working days": "30 working days", "€40": "€60",
         "€4.90": "€9.90", "10 seconds": "3 seconds", "2.4 GHz": "5 GHz", "6 weeks": "6 months",
         "3 months": "12 months", "0.25 litres": "0.5 litres", "75 cm": "1.2 m", "20 minutes": "2 hours",
         "2 tablespoons": "half a cup", "1 hour": "24 hours", "2 working days": "10 working days",
         "8:00 to 18:00": "10:00 to 14:00", "€6": "€16", "€8": "€18", "€25": "€45", "1.7 litres": "2.5 litres",
         "0.8 litres": "1.2 litres", "1.5 litres": "1.8 litres", "2200 W": "1200 W", "1500 W": "3000 W",
         "2400 W": "1800 W", "30 minutes": "3 hours", "60 minutes": "5 minutes", "one working day": "two weeks"}
DEFLECTIONS = ["Please check the user manual that came with your kettle; everything is explained there.",
               "We can't help with that here. Please contact our support team.",
               "That depends on your situation. Please look it up on our website.",
               "Unfortunately I can't answer this question. Try restarting the kettle."]
CURT = ["Read the manual.", "Not our problem, sorry.", "Try again later.", "Just google it.",
        "Can't say.", "Check the box it came in."]
GUESSES = ["I'm not sure, but I think you need to send the kettle back to the shop where you bought it.",
           "I believe that isn't covered at all, so you'll have to pay for it yourself.",
           "Probably it just needs a few days to settle; kettles often behave like that at first.",
           "I think you'd need to buy a new one, these can't be repaired."]


def _wrong_fact(answer: str) -> str | None:
    for right, wrong in WRONG.items():
        if right in answer:
            return answer.replace(right, wrong, 1)
    return None


def rejections(question: str, answer: str, others: list[str], rng: random.Random) -> list[str]:
    """Replies the team would not send, most useful (a wrong fact, same style) first where one exists."""
    body = answer.removeprefix(OPEN).removesuffix(CLOSE).strip()
    out = []
    wrong = _wrong_fact(answer)
    if wrong:
        out.append(wrong)
    out.append(f"{OPEN} {rng.choice(DEFLECTIONS)} {CLOSE}")
    first = re.split(r"(?<=[.!?]) ", body)[0]
    out.append(f"{rng.choice(CURT)} {first}" if rng.random() < 0.5 else rng.choice(CURT))
    other = rng.choice([o for o in others if o != answer])
    out.append(other)
    out.append(f"{OPEN} {rng.choice(GUESSES)} {CLOSE}")
    return out


def preference_rows(seed: int = 11) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    rows = chat_rows()
    answers = sorted({a for _, a in rows})
    out = []
    for question, answer in rows:
        options = rejections(question, answer, answers, rng)
        first = options[0] if options[0] != answer and rng.random() < 0.6 else rng.choice(options[1:])
        out.append((question, answer, first))
        if rng.random() < 0.35:  # a second pair for the same question, with another kind of bad reply
            second = rng.choice([o for o in options if o != first])
            out.append((question, answer, second))
    return out


# --- documents ------------------------------------------------------------------------------------------------
PRODUCTS = {
    "One": dict(litres="1.7", watts="2200", presets="40, 60, 70, 80, 90 and 100 °C", warm="30", wifi=True,
                cups="seven", weight="1.2 kg"),
    "Mini": dict(litres="0.8", watts="1500", presets="70, 80, 90 and 100 °C", warm="20", wifi=False,
                 cups="three", weight="0.8 kg"),
    "Pro": dict(litres="1.5", watts="2400", presets="any temperature from 40 to 100 °C in steps of 1 °C",
                warm="60", wifi=True, cups="six", weight="1.3 kg"),
}


def user_guide(name: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) of a product's user guide."""
    p = PRODUCTS[name]
    app = ("It also connects to the free Kettlebird Home app over 2.4 GHz Wi-Fi, so you can start it from your "
           "phone and get a notification when the water is ready." if p["wifi"] else
           "It has no Wi-Fi: everything is done with the three buttons on the handle, which keeps it simple and "
           "means there is nothing to pair or update.")
    return [
        (f"Kettlebird {name} user guide", [
            f"Thank you for choosing the Kettlebird {name}. This guide explains how to set up your kettle, how to "
            "choose a temperature, how to keep it clean and what to do when the display shows an error. Please "
            "read the safety notes before the first use and keep this guide for later.",
            f"The Kettlebird {name} holds {p['litres']} litres, about {p['cups']} cups, and is rated at "
            f"{p['watts']} W. It weighs {p['weight']} when empty. {app}"]),
        ("What is in the box", [
            f"In the box you find the Kettlebird {name} kettle, its base with a 75 cm power cord, a removable "
            "limescale filter that sits in the spout, this guide and a card with your order number. Keep the card: "
            "the order number is all you need for the warranty, there is nothing to register."]),
        ("Before the first use", [
            "Unpack the kettle and remove every sticker and plastic film. Place the base on a dry, flat surface "
            "away from the edge of the counter and from the sink. Wind any extra cord into the storage groove "
            "under the base.",
            "Fill the kettle to the MAX line with fresh water, boil it, pour the water away and repeat once. This "
            "rinses the inside and removes any smell from production. It is normal for a new kettle to smell a "
            "little the first two or three times it boils."]),
        ("Choosing a temperature", [
            f"The Kettlebird {name} offers {p['presets']}. Press + or - on the handle to move between "
            "temperatures; the display shows the one you chose, and the kettle remembers it for the next time.",
            "Different drinks taste best at different temperatures. We suggest 70 °C for white tea, 80 °C for "
            "green tea, 90 °C for oolong, 95 °C for coffee made in a press and 100 °C for black tea and herbal "
            "infusions. Water for babies' bottles should always be boiled at 100 °C first and then cooled."]),
        ("Keep-warm", [
            f"After the water reaches your temperature, the kettle can keep it there for {p['warm']} minutes. "
            "Hold the power button for two seconds to start keep-warm; the ring light glows amber while it is on. "
            "Press the power button once to stop keep-warm early, or lift the kettle off the base."]),
        ("The ring light", [
            "The ring light around the base shows what the kettle is doing: it glows blue while the water heats, "
            "green when the water is ready, amber during keep-warm, and it flashes red when there is an error. "
            "When it flashes red, the display shows E1, E2 or E3; the troubleshooting guide explains each code."]),
        ("Filling and boiling", [
            "Always fill at least to the MIN line, 0.25 litres or about one cup, and never above the MAX line. "
            "Boiling only the water you need saves energy and time. The kettle switches itself off as soon as the "
            "water reaches the temperature you chose, and the lid stays locked while the water heats.",
            "If the kettle is switched on empty or with too little water, the boil-dry protection switches it off "
            "and the display shows E1. Let it cool for ten minutes before you fill it and try again."]),
        ("Cleaning", [
            "Unplug the kettle and let it cool before cleaning. Wipe the outside and the base with a damp cloth "
            "and dry them. The kettle body and the base must never go in the dishwasher or under running water. "
            "The limescale filter can go in the dishwasher on the top rack.",
            "Descale regularly: every 6 weeks with hard water, every 3 months with soft water. The care and "
            "descaling guide describes how, with citric acid."]),
        ("Technical data", [
            f"Capacity {p['litres']} litres. Power {p['watts']} W at 220-240 V. Cord 75 cm. Weight {p['weight']}. "
            "Inside: stainless steel; the only other part that touches the water is the silicone lid seal. All "
            "Kettlebird kettles are BPA-free and carry a 3-year warranty from the delivery date."]),
    ]


APP_GUIDE = [
    ("Kettlebird Home app guide", [
        "The Kettlebird Home app lets you start your Kettlebird One or Kettlebird Pro from your phone, choose the "
        "temperature, set schedules and receive a notification when the water is ready. The app is free for iOS "
        "and Android. The Kettlebird Mini has no Wi-Fi and does not work with the app."]),
    ("Adding your kettle", [
        "Place the kettle on its base and plug it in. Open the app, tap Add kettle and follow the steps. Your "
        "phone must be on a 2.4 GHz Wi-Fi network while you pair: Kettlebird kettles do not connect to 5 GHz "
        "networks. Keep the kettle within a few metres of your router during pairing.",
        "If the app cannot find your kettle, reset the kettle by holding the power button and the + button "
        "together for 10 seconds, until the ring light blinks blue three times, and add it again."]),
    ("Schedules", [
        "A schedule starts the kettle at a time you choose, for example at 7:00 on weekdays. The kettle must be "
        "on its base with enough water in it; if it is empty, the schedule is skipped and the app tells you why. "
        "You can keep up to ten schedules."]),
    ("Voice assistants", [
        "The Kettlebird One and Kettlebird Pro work with Alexa and Google Home. Link them in the app under "
        "Settings > Voice assistants, then say, for example, 'Alexa, ask Kettlebird to heat water to 80 "
        "degrees'. For safety, a voice assistant can only start a kettle that is on its base."]),
    ("Firmware updates", [
        "Wi-Fi models update themselves overnight through the app, as long as the kettle stays on its base. "
        "You do not need to do anything: the app tells you when an update has been installed and what changed."]),
    ("Notifications and privacy", [
        "The app sends a notification when the water is ready, when keep-warm ends and when the kettle needs "
        "descaling. The kettle reports only its temperature, its state and error codes; it has no microphone or "
        "camera. You can delete your account and all its data under Settings > Account."]),
]

CARE = """# Care and descaling guide

Limescale is the white or brown layer that forms inside a kettle when hard water is boiled. It does no harm,
but it makes the kettle slower, louder and less efficient, and flakes of it end up in your cup.

## How often to descale

Descale every 6 weeks if you have hard water, or every 3 months with soft water. Wi-Fi models remind you in
the Kettlebird Home app. If you are not sure how hard your water is, look at the inside of the kettle after a
month: a visible white layer means hard water.

## Descaling with citric acid

1. Dissolve 2 tablespoons of citric acid in 1 litre of water (1 tablespoon in half a litre for the Kettlebird
   Mini).
2. Pour it into the kettle and boil it.
3. Leave it for 20 minutes.
4. Pour it away and rinse the kettle twice with fresh water.

Citric acid is sold in supermarkets and chemists. Please do not use vinegar: it wears out the silicone lid
seal, and its smell stays in the kettle for days.

## The limescale filter

The filter in the spout catches flakes of limescale. Take it out once a week, rinse it under the tap, and
put it in the dishwasher on the top rack now and then. A lost or damaged filter can be replaced: filters cost
€8 at kettlebird.example/parts and ship for free.

## The outside and the base

Wipe the outside with a damp cloth. The kettle body and the base must never go in the dishwasher or under
running water, because water in the base contacts causes the error E3.

## The lid seal

The silicone lid seal keeps steam inside. If it becomes hard, cracked or loose, replace it: a new lid seal
costs €6 and fits every Kettlebird kettle.
"""

TROUBLESHOOTING = """# Troubleshooting

Most problems can be solved in a minute. If the ring light flashes red, the display shows an error code.

## E1: boil-dry protection

E1 means the kettle was switched on with too little water and the boil-dry protection switched it off. Let it
cool for 10 minutes, fill it above the MIN line (0.25 litres) and switch it on again.

## E2: temperature sensor

E2 means the temperature sensor reports a fault. Reset the kettle first (see below). If E2 comes back, write to
help@kettlebird.example with your order number: we send a replacement under the 3-year warranty.

## E3: no contact with the base

E3 means the kettle has no good contact with its base. Lift it off, make sure the contacts on the kettle and on
the base are clean and completely dry, and set it down again firmly.

## Resetting the kettle

To reset any Kettlebird kettle, place it on its base, then hold the power button and the + button together for
10 seconds until the ring light blinks blue three times. Your temperature presets go back to the factory
settings, and Wi-Fi models must be added to the Kettlebird Home app again.

## The kettle does not heat

Check that the base is plugged in and the socket works, and that the kettle sits flat on the base. If the ring
light stays dark, try another socket. If it still does not heat, reset it, and contact us if that does not help.

## The water tastes of plastic or metal

A new kettle can taste a little the first few times. Boil a full kettle twice and pour the water away. If the
taste stays, descale the kettle: old limescale can give water a metallic taste.

## The app cannot find the kettle

Kettlebird kettles connect to 2.4 GHz Wi-Fi only. Put your phone on a 2.4 GHz network while pairing, keep the
kettle close to the router, and reset the kettle if it is still not found.
"""

SERVICE = """Warranty, returns and delivery

Warranty
Every Kettlebird kettle has a 3-year warranty from the delivery date. It covers any fault in materials or
workmanship. You don't need to register your kettle: your order number is enough. Kettles given as gifts are
covered too; the person who received it can contact us with the order number. The warranty does not cover
limescale damage from a kettle that was never descaled, or a base that was put in water.

Returns
You can return any order within 45 days of delivery, even if you have used it. Print a free return label at
kettlebird.example/returns, pack the kettle in any sturdy box and drop it at a parcel shop. We refund you
within 5 working days of receiving it, to the payment method you used.

Changing or cancelling an order
You can change or cancel an order within 1 hour of placing it, on the Orders page of your Kettlebird account.
After that it is already being packed, but you can still return it within 45 days.

Delivery
Delivery is free for orders over €40; below that it costs €4.90. We deliver to every country in the European
Union, and for now only there. We dispatch every order within 2 working days, and delivery then takes 2 to 4
working days. The tracking link is emailed to you the moment your parcel leaves our warehouse.

Damaged or incomplete deliveries
If your kettle arrives damaged or a part is missing, send a photo to help@kettlebird.example with your order
number and we ship a replacement straight away, free of charge. You don't need to return the damaged one.

Spare parts
Spare parts are sold at kettlebird.example/parts: a lid seal costs €6, a limescale filter €8 and a replacement
base €25. Parts fit every Kettlebird kettle and ship for free.

Support
Our team answers Monday to Friday, 8:00 to 18:00 CET. Write to help@kettlebird.example or use the chat in the
Kettlebird Home app; we reply within one working day. We accept Visa, Mastercard, PayPal and bank transfer.
"""

SAFETY = """Safety instructions

Read these instructions before using your Kettlebird kettle for the first time, and keep them.

Use the kettle only with the base it came with, and only for heating water. Never put milk, soup, coffee or
anything else in it: they burn onto the heating plate and block the temperature sensor.

Fill the kettle between the MIN line (0.25 litres) and the MAX line. Too little water triggers the boil-dry
protection; too much water can spill boiling water out of the spout.

Place the base on a dry, flat, heat-resistant surface, away from the edge of the counter, the sink and
curtains. Do not let the cord hang over the edge, where a child could pull it.

The double wall keeps the outside of the kettle cool to the touch, and the lid stays locked while the water
heats. Even so, steam comes out of the spout: keep your hands and face away from it, and keep the kettle and
its cord out of reach of small children.

Never put the kettle body or the base in water, in the dishwasher or under running water. Unplug the base
before cleaning it. If the cord or the base is damaged, stop using the kettle and contact Kettlebird support
for a replacement.

Do not open the lid while the water boils. Always put the kettle back on its base before you switch it on,
and lift it off the base only by the handle.
"""


BREWING = """Brewing guide: getting the best from your Kettlebird

Water temperature changes the taste of tea and coffee more than most people think. Boiling water pulls bitter
tannins out of delicate leaves, while water that is too cool leaves black tea thin and flat. A Kettlebird lets
you pick the temperature, so here is where to start.

White tea: 70 °C, three to four minutes. White tea is the least processed tea and the easiest to scald. Use two
teaspoons of the large, fluffy leaves per cup.

Green tea: 80 °C, two to three minutes. Japanese green teas such as sencha like it even a little cooler, around
75 °C on the Kettlebird Pro. If your green tea tastes bitter, lower the temperature before you shorten the time.

Oolong: 90 °C, three to five minutes. Rolled oolongs open slowly; they can be steeped three or four times, a
little longer each time.

Black tea: 100 °C, three to five minutes. Breakfast blends take milk well after four or five minutes; Darjeeling
is best after three, without milk.

Herbal infusions: 100 °C, five to seven minutes. Peppermint, chamomile and rooibos are not tea at all and need
boiling water and time.

Coffee: 95 °C. For a French press, let the boiled water rest for thirty seconds or set 95 °C on the Kettlebird
Pro, use one tablespoon of coarse coffee per cup and press after four minutes. For pour-over, wet the filter
first and pour slowly in circles.

Instant soups and porridge: 100 °C. Always boil water for babies' bottles at 100 °C first and let it cool to
the temperature your bottle instructions give.

Fresh water makes a difference too: boil only what you need, and do not reboil water that has stood in the
kettle for hours. Its dissolved air is gone and tea made with it tastes dull.
"""


def faq() -> str:
    """The chat example's topics as an FAQ page (first question of each, the answer without the house style)."""
    lines = ["# Frequently asked questions", ""]
    for questions, answer in TOPICS:
        lines += [f"## {questions[0]}", "", answer, ""]
    return "\n".join(lines)


def _pdf_pages(sections: list[tuple[str, list[str]]], lines_per_page: int = 46) -> list[list[str]]:
    lines = []
    for heading, paragraphs in sections:
        lines += [heading, ""]
        for paragraph in paragraphs:
            lines += wrapped(paragraph, 88) + [""]
    return [lines[i:i + lines_per_page] for i in range(0, len(lines), lines_per_page)]


def _docx(path: Path, sections: list[tuple[str, list[str]]], table=None) -> None:
    import docx

    document = docx.Document()
    for i, (heading, paragraphs) in enumerate(sections):
        document.add_heading(heading, level=1 if i == 0 else 2)
        for text in paragraphs:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    document.core_properties.author = "Kettlebird"
    document.save(str(path))


def write_manuals(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_pdf(folder / "kettlebird-one-user-guide.pdf", _pdf_pages(user_guide("One")))
    write_pdf(folder / "kettlebird-mini-user-guide.pdf", _pdf_pages(user_guide("Mini")))
    pro = user_guide("Pro")
    pro[0] = ("Kettlebird Pro quick start", pro[0][1])
    specs = [["", "Kettlebird One", "Kettlebird Mini", "Kettlebird Pro"],
             ["Capacity"] + [f"{PRODUCTS[n]['litres']} litres" for n in ("One", "Mini", "Pro")],
             ["Power"] + [f"{PRODUCTS[n]['watts']} W" for n in ("One", "Mini", "Pro")],
             ["Keep-warm"] + [f"{PRODUCTS[n]['warm']} minutes" for n in ("One", "Mini", "Pro")],
             ["Wi-Fi and app"] + ["yes" if PRODUCTS[n]["wifi"] else "no" for n in ("One", "Mini", "Pro")]]
    _docx(folder / "kettlebird-pro-quick-start.docx", pro, specs)
    _docx(folder / "kettlebird-home-app-guide.docx", APP_GUIDE)
    (folder / "care-and-descaling.md").write_text(CARE, encoding="utf-8")
    (folder / "troubleshooting.md").write_text(TROUBLESHOOTING, encoding="utf-8")
    (folder / "warranty-returns-delivery.txt").write_text(SERVICE, encoding="utf-8")
    (folder / "safety-instructions.txt").write_text(SAFETY, encoding="utf-8")
    (folder / "brewing-guide.txt").write_text(BREWING, encoding="utf-8")
    (folder / "faq.md").write_text(faq(), encoding="utf-8")
    print(f"wrote {len(list(folder.iterdir()))} documents to {folder}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = preference_rows()
    with open(OUT / "kettlebird_preferences.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("prompt", "chosen", "rejected"))
        writer.writerows(rows)
    print(f"wrote {len(rows)} pairs to {OUT / 'kettlebird_preferences.csv'}")
    write_manuals(OUT / "kettlebird_manuals")


if __name__ == "__main__":
    main()
