"""Build the text example datasets in assets/examples/ from the templates and facts below (deterministic).

- kettlebird_support.csv (question, answer): customer questions to Kettlebird, a fictional maker of smart
  kettles, answered in the support team's house style: every answer opens with "Thanks for asking Kettlebird
  Support!", uses the same facts (warranty, returns, descaling, the app...) and closes with "Happy brewing!".
- support_tickets.csv (text, department): short customer messages routed to billing, shipping, technical,
  account or returns. Shared openers and context sentences keep keywords from giving the class away.

    .venv/bin/python scripts/build_examples.py
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "examples"
OPEN = "Thanks for asking Kettlebird Support!"
CLOSE = "Happy brewing!"

PRODUCTS = {
    "Kettlebird One": dict(litres="1.7", watts="2200", presets="40, 60, 70, 80, 90 and 100 °C", warm="30",
                           wifi=True),
    "Kettlebird Mini": dict(litres="0.8", watts="1500", presets="70, 80, 90 and 100 °C", warm="20", wifi=False),
    "Kettlebird Pro": dict(litres="1.5", watts="2400", presets="any temperature from 40 to 100 °C in 1 °C steps",
                           warm="60", wifi=True),
}

# Questions that depend on the product: answers are filled from PRODUCTS.
PRODUCT_TOPICS = [
    (["How much water does the {p} hold?", "What's the capacity of the {p}?", "Is the {p} big enough for a "
      "family? How many litres?"],
     "The {p} holds {litres} litres. Please keep the water between the MIN line (0.25 litres) and the MAX line."),
    (["Which temperatures can I choose on the {p}?", "Does the {p} have a setting for green tea?",
      "Can I set the {p} to 80 degrees?"],
     "The {p} offers {presets}. For green tea we suggest 80 °C; for black tea and coffee, 100 °C and 95 °C."),
    (["How long does the {p} keep water warm?", "Is there a keep-warm function on the {p}?"],
     "The {p} keeps water at your chosen temperature for {warm} minutes; the ring light glows amber meanwhile. "
     "Press the power button once to stop keep-warm early."),
    (["What is the power rating of the {p}?", "How many watts does the {p} use?"],
     "The {p} is rated at {watts} W, and it switches itself off as soon as the water reaches the temperature "
     "you chose."),
    (["Does the {p} work with the app?", "Can I control my {p} from my phone?", "Does the {p} have Wi-Fi?"],
     None),  # answered by _app_answer
]

TOPICS = [
    (["How long is the warranty?", "What does your warranty cover?", "My kettle is two years old and stopped "
      "heating. Is it still under warranty?", "Do I need to register my kettle for the warranty?",
      "Is the warranty valid if I bought the kettle as a gift?"],
     "Every Kettlebird kettle has a 3-year warranty from the delivery date, covering any fault in materials "
     "or workmanship. You don't need to register: your order number is enough. Gifts are covered too; the "
     "person who received it can contact us with the order number."),
    (["Can I return my kettle?", "What is your return policy?", "I changed my mind, can I send it back?",
      "How many days do I have to return an order?", "Do I have to pay for return shipping?"],
     "You can return any order within 45 days of delivery, even if you have used it. Print a free return "
     "label at kettlebird.example/returns, pack the kettle in any sturdy box, and we refund you within 5 "
     "working days of receiving it."),
    (["How do I descale my kettle?", "There is white limescale inside my kettle. How do I get rid of it?",
      "How often should I descale?", "Can I use vinegar to descale?", "What do you recommend for cleaning "
      "limescale?"],
     "Descale every 6 weeks if you have hard water, or every 3 months with soft water. Dissolve 2 tablespoons "
     "of citric acid in 1 litre of water (1 tablespoon in half a litre for the Mini), boil it, leave it for "
     "20 minutes, then pour it away and rinse twice with fresh water. Please don't use vinegar: it wears out "
     "the silicone lid seal."),
    (["How do I reset my kettle?", "My kettle seems frozen and won't respond. What should I do?",
      "Is there a factory reset?", "How do I restart the kettle?"],
     "To reset any Kettlebird kettle, place it on its base, then hold the power button and the + button "
     "together for 10 seconds until the ring light blinks blue three times. Your presets go back to the "
     "factory settings; Wi-Fi models also need to be added to the app again."),
    (["What does error E1 mean?", "My kettle shows E1 and stopped.", "The display says E1 after I switched "
      "it on."],
     "E1 means the boil-dry protection switched the kettle off because it was switched on with too little "
     "water. Let it cool for 10 minutes, fill it above the MIN line (0.25 litres) and switch it on again."),
    (["What does error E2 mean?", "My kettle shows E2.", "E2 keeps coming back even after a reset."],
     "E2 means the temperature sensor reports a fault. Please reset the kettle first (power and + together "
     "for 10 seconds). If E2 comes back, write to help@kettlebird.example with your order number and we will "
     "send a replacement under the warranty."),
    (["What does error E3 mean?", "The kettle says E3 when I put it on the base."],
     "E3 means the kettle has no good contact with its base. Lift it off, make sure the contacts on the "
     "kettle and the base are clean and completely dry, and set it down again firmly."),
    (["What do the colours of the ring light mean?", "Why is the light amber?", "The ring light is "
      "flashing red, what does that mean?", "What does the green light mean?"],
     "The ring light shows what the kettle is doing: blue while it heats, green when the water is ready, "
     "amber during keep-warm, and flashing red for an error (the display then shows E1, E2 or E3)."),
    (["When are you open?", "What are your support hours?", "How can I contact support?",
      "Can I call you on the weekend?", "What's your email address?"],
     "Our team answers Monday to Friday, 8:00 to 18:00 CET. Write to help@kettlebird.example or use the chat "
     "in the Kettlebird Home app; we reply within one working day."),
    (["How much is shipping?", "Is delivery free?", "Do you charge for delivery?"],
     "Delivery is free for orders over €40; below that it costs €4.90. We deliver to every country in the "
     "European Union."),
    (["When will my order ship?", "How long does delivery take?", "How can I track my parcel?",
      "I haven't received a tracking number yet."],
     "We dispatch every order within 2 working days, and delivery then takes 2 to 4 working days. The "
     "tracking link is emailed to you the moment your parcel leaves our warehouse; please check your spam "
     "folder if it hasn't arrived."),
    (["Do you ship to the UK?", "Can I order from the United States?", "Do you deliver outside Europe?"],
     "For now we only deliver within the European Union. We are sorry we can't ship to other countries yet."),
    (["Can I change my order?", "How do I cancel an order?", "I ordered the wrong colour, can I fix it?"],
     "You can change or cancel an order within 1 hour of placing it, on the Orders page of your Kettlebird "
     "account. After that it is already being packed, but you can still return it within 45 days."),
    (["Where can I buy spare parts?", "I lost the limescale filter. Can I get a new one?", "The lid seal is "
      "worn out. Do you sell replacements?", "How much is a replacement base?"],
     "Spare parts are sold at kettlebird.example/parts: a lid seal costs €6, a limescale filter €8 and a "
     "replacement base €25. Parts fit every Kettlebird kettle and ship for free."),
    (["Can I put the kettle in the dishwasher?", "Is the filter dishwasher safe?", "How do I clean the "
      "outside of the kettle?"],
     "The kettle body and base must never go in the dishwasher or under running water. Wipe them with a damp "
     "cloth. The limescale filter is dishwasher safe on the top rack."),
    (["Is the kettle BPA-free?", "Does the water touch plastic?", "What is the inside made of?"],
     "All our kettles are BPA-free. The inside is stainless steel, and the only other part that touches the "
     "water is the silicone lid seal."),
    (["How long is the power cord?", "Can I store the cable in the base?"],
     "The cord is 75 cm long, and any extra length winds into the storage groove under the base."),
    (["How do firmware updates work?", "Do I need to update my kettle?", "How do I get the latest software?"],
     "Wi-Fi models update themselves overnight through the Kettlebird Home app, as long as the kettle stays "
     "on its base. You don't need to do anything; the app tells you when an update has been installed."),
    (["Does it work with Alexa?", "Can I use Google Home with my kettle?", "Can I start the kettle with my "
      "voice?"],
     "The Kettlebird One and Kettlebird Pro work with Alexa and Google Home: link them in the Kettlebird Home "
     "app under Settings > Voice assistants. The Kettlebird Mini has no Wi-Fi, so it can't be voice "
     "controlled."),
    (["The app can't find my kettle.", "I can't connect my kettle to Wi-Fi.", "Why won't my kettle pair "
      "with the app?"],
     "Kettlebird kettles connect to 2.4 GHz Wi-Fi only, so please check that your phone is on a 2.4 GHz "
     "network while pairing. Keep the kettle within a few metres of the router, and if it still isn't "
     "found, reset it (power and + together for 10 seconds) and add it again in the Kettlebird Home app."),
    (["Which payment methods do you accept?", "Can I pay with PayPal?", "Do you take bank transfers?"],
     "We accept Visa, Mastercard, PayPal and bank transfer. Orders paid by bank transfer ship once the "
     "payment arrives, usually within 2 working days."),
    (["My kettle arrived damaged. What should I do?", "The box was crushed and the kettle is dented.",
      "A part is missing from my order."],
     "We're sorry about that! Send a photo of the damage or the missing part to help@kettlebird.example "
     "with your order number, and we will ship a replacement straight away, free of charge. You don't "
     "need to return the damaged one."),
    (["How much water should I put in?", "What is the minimum amount of water?", "Can I boil just one cup?"],
     "Fill at least to the MIN line (0.25 litres, about one cup) and never above the MAX line. Boiling only "
     "what you need saves energy and time."),
    (["Is the kettle safe for children?", "Does the outside get hot?"],
     "The double wall keeps the outside of the kettle cool to the touch, and the lid stays locked while the "
     "water heats. Even so, please keep the kettle and its cord out of reach of small children."),
]


def _app_answer(product: str) -> str:
    if PRODUCTS[product]["wifi"]:
        return (f"Yes! The {product} connects to the free Kettlebird Home app for iOS and Android over 2.4 GHz "
                "Wi-Fi. You can start it, pick a temperature and get a notification when the water is ready.")
    return (f"The {product} has no Wi-Fi, so it doesn't work with the app: you control it with the buttons on "
            "the handle. If you'd like app control, the Kettlebird One and Kettlebird Pro both have it.")


def chat_rows() -> list[tuple[str, str]]:
    rows = []
    for questions, answer in TOPICS:
        rows += [(q, answer) for q in questions]
    for questions, answer in PRODUCT_TOPICS:
        for product, facts in PRODUCTS.items():
            text = _app_answer(product) if answer is None else answer.format(p=product, **facts)
            rows += [(q.format(p=product), text) for q in questions]
    variants = ["Hi, {q}", "Hello! {q}", "Quick question: {q}", "{q} Thanks!"]
    rng = random.Random(7)
    extra = [(rng.choice(variants).format(q=q[0].lower() + q[1:] if not q.startswith(("I ", "I'", "E"))
                                         else q), a) for q, a in rng.sample(rows, 60)]
    return [(q, f"{OPEN} {a} {CLOSE}") for q, a in rows + extra]


TICKETS = {
    "billing": [
        "I was charged twice for the same order", "the invoice shows the wrong VAT number for my company",
        "my card was debited but the order still says unpaid", "can you send me an invoice with my business "
        "address", "I paid by bank transfer a week ago and nothing has happened", "why is there a €4.90 fee on "
        "my receipt", "the discount code was not applied to my payment", "PayPal took the money twice",
        "I need a copy of the receipt for my expense report", "the amount on my statement is higher than the "
        "price on the website", "please correct the name on my invoice", "can I pay the rest in instalments",
    ],
    "shipping": [
        "the tracking link has not moved for five days", "my parcel was delivered to the wrong address",
        "the courier says delivered but nothing is at my door", "can you ship to my office instead",
        "when will my order leave the warehouse", "I was not home and the parcel went back",
        "the tracking number you sent does not work", "it has been two weeks and the kettle hasn't arrived",
        "can I pick the parcel up myself", "the delivery date keeps changing", "only one of my two boxes "
        "arrived", "the driver left the package in the rain",
    ],
    "technical": [
        "the kettle shows E2 every morning", "the app cannot find the kettle on my Wi-Fi", "the ring light "
        "flashes red and nothing heats", "water is not reaching the temperature I set", "it switches off "
        "before the water boils", "the buttons on the handle don't respond", "after the update the keep-warm "
        "stopped working", "it makes a loud clicking noise while heating", "the kettle keeps disconnecting "
        "from the app", "Alexa says the device is not responding", "there is a burning smell from the base",
        "the display is blank even though it is plugged in",
    ],
    "account": [
        "I can't log in, the reset email never comes", "please change the email address on my account",
        "how do I delete my account and my data", "someone else's kettle shows up in my app",
        "I want to merge two accounts", "my password stopped working after the update", "I'd like to stop "
        "the marketing emails", "the app logs me out every day", "can my partner share my kettle in the "
        "app", "I registered with the wrong email by mistake", "two-factor codes are not arriving by SMS",
        "where can I download all data you hold about me",
    ],
    "returns": [
        "I'd like to send the kettle back, it's too big for my kitchen", "how do I print the return label",
        "I returned it three weeks ago and still have no refund", "can I exchange the Mini for the One",
        "the return label says the address is invalid", "I received a gift I don't need, can I return it",
        "do I need the original box to return it", "I want to return only one of the two kettles",
        "the refund was less than what I paid", "the kettle was faulty so I want my money back, not a "
        "repair", "can the courier collect the return from my home", "is it too late to return after 40 days",
    ],
}
OPENERS = ["", "Hi, ", "Hello, ", "Hi team, ", "Good morning, ", "Urgent: ", "Hey, ", "Dear support, "]
CONTEXT = ["", "", " I ordered the One last month.", " It's the Pro I bought in March.", " This is about "
           "order 48213.", " My mum uses the Mini every day.", " I already emailed once.", " I bought it with "
           "the spring discount.", " We have two kettles at home."]
CLOSERS = ["", "", " Thanks.", " Please help.", " Thank you in advance!", " Can someone look at this?",
           " What can I do?"]


def ticket_rows(per_class: int = 60) -> list[tuple[str, str]]:
    rng = random.Random(11)
    rows = []
    for department, cores in TICKETS.items():
        seen: set[str] = set()
        while len(seen) < per_class:
            core = rng.choice(cores)
            opener = rng.choice(OPENERS)
            body = core[0].upper() + core[1:] if not opener else core
            text = f"{opener}{body}.{rng.choice(CONTEXT)}{rng.choice(CLOSERS)}".strip()
            if text not in seen:
                seen.add(text)
                rows.append((text, department))
    rng.shuffle(rows)
    return rows


def write(path: Path, header: tuple[str, str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write(OUT / "kettlebird_support.csv", ("question", "answer"), chat_rows())
    write(OUT / "support_tickets.csv", ("text", "department"), ticket_rows())


if __name__ == "__main__":
    main()
