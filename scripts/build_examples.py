"""Build the text example datasets in assets/examples/ from the templates and facts below (deterministic).

- kettlebird_support.csv (question, answer): customer questions to Kettlebird, a fictional maker of smart
  kettles, answered in the support team's house style: every answer opens with "Thanks for asking Kettlebird
  Support!", uses the same facts (warranty, returns, descaling, the app...) and closes with "Happy brewing!".
- support_tickets.csv (text, department): about 360 distinct customer messages, each written by hand, routed
  to billing, shipping, technical, account, returns or feedback (product ideas and praise).

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


# Every ticket is written out by hand, one per line, so that no sentence recurs in another row: a random
# train/validation split then tests generalisation, not recall. Many tickets borrow another department's words
# (a refund that mentions the app, a charge for express delivery) so that keywords alone are not enough.
TICKETS = {
    "billing": """
I was charged twice for order 48213, can you refund one of the payments?
My invoice shows the wrong company name, we're Hartmann GmbH not Hartman.
The app says my order is unpaid but the money left my account on Monday.
Could you send an invoice with our VAT number? Our accountant needs it for the quarter.
Why did I pay €4.90 for delivery when my order was over €40?
The spring discount code didnt apply at checkout, I paid full price.
Paypal shows two transactions of €89 for one kettle.
I need a proper receipt for my expense claim, the confirmation email isn't enough for finance.
My bank statement shows €94.90 but the website listed the Pro at €89.
Is it possible to split the payment for the Pro into three monthly instalments?
I paid by bank transfer eight days ago and the order still hasn't been confirmed.
My credit card was declined three times although it works everywhere else.
You charged me in pounds instead of euros and my bank added a conversion fee.
The price dropped two days after I bought the One. Can I get the difference back?
I was billed for a spare lid seal I never ordered.
The invoice PDF link in the email leads to an error page.
Can you change the billing address on invoice 2024-1187? I moved last month.
I'm a reseller, do you offer invoices with payment terms of 30 days?
There's a pending charge of €1 from Kettlebird on my card, what is that?
My gift card balance wasn't used, the whole amount went on my Visa instead.
I'd like to pay with Apple Pay but I don't see it at checkout.
The money for the cancelled order went back to an old card that is closed now.
Could you reissue the invoice without my private address, just the company one?
The VAT on my receipt is 19% but I live in Austria where it's 20%.
I got a payment reminder for an order I already paid by transfer.
Mastercard charged me a foreign transaction fee, are you not based in the EU?
My order total jumped by €6 on the last page of checkout, what was added?
I used the student discount but the receipt doesn't show it.
Can I get one combined invoice for the three kettles we bought for the office?
The amount was taken from my account even though the order failed with an error.
hi, i need the invoice number for order 51990, my tax advisor is asking
Why was my bank transfer bounced back? I used the IBAN from the email.
Two kettles, two invoices, but only one payment went through. Do I owe you money?
The checkout keeps saying "payment method not available" for my Maestro card.
Can I pay the €25 for the replacement base separately from the rest?
Your confirmation says €79, Paypal says €97. Which one is right?
Please delete my saved card details from the payment page.
My employer is paying, can the invoice be addressed to them instead of me?
I was charged for express delivery but I picked standard.
Does the price include VAT? The invoice lists it separately and now I'm confused.
I paid in advance for a preorder of the Pro, when will the charge be final?
The promo said free descaler with every kettle but I was charged €5 for it.
A charge of €129 appeared that I don't recognise, I have never bought the Pro.
Could you send me a credit note for the partial refund so my books balance?
The invoice date is wrong, it says 2023 instead of this year.
Can I use two discount codes on one order?
Im being charged a monthly fee of €2.99 for the app, I thought it was free?
How do I stop the premium recipes subscription in the app? It keeps billing my card.
I forgot to put the order number in the transfer reference, will the payment still be matched?
The price in the app was €10 cheaper than on the website, can you honour it?
My company needs a proforma invoice before we can pay.
Your payment page timed out and now I see a reservation of €89 on my card twice.
Is there an extra fee for paying with PayPal? The total went up when I switched.
Could you tell me which card I used for order 47002? I need it for my records.
The invoice attachment is missing from the order confirmation.
My partner ordered with my card by mistake, can the charge be moved to her card?
We're a café and need monthly statements of everything we bought from you.
Klarna says I still owe money but I sent the kettle back weeks ago.
The shop charged VAT even though I entered a valid EU VAT ID for reverse charge.
I was told I'd get 10% off as a newsletter subscriber, the code doesn't work.
Overcharged again!! Third time this year I have to write about wrong amounts.
Please confirm you received my payment, the order page still says 'awaiting payment'.
""",
    "shipping": """
The tracking link hasn't updated in five days, is my parcel lost?
DHL says delivered but there's nothing at my door or with the neighbours.
Can you send the order to my office? I'm never home during the day.
My order was placed on Friday and still hasn't left the warehouse.
I wasn't home and the courier took the parcel back to the depot, how do I get it?
The tracking number from the email says 'not found' on the courier's site.
Two weeks and still no kettle. I'm starting to worry.
Can I collect the parcel from a pick-up point near me instead?
The delivery date has moved three times now.
Only one of my two boxes arrived, the second one has the base in it.
The driver left the box outside in the rain and it's soaked.
I typed my house number wrong, can you fix the address before it goes out?
Do you deliver to the Canary Islands? The checkout won't accept my postcode.
The courier wants me to pay customs fees, I thought you shipped within the EU?
Is express delivery possible? I need the kettle before Saturday for a gift.
My parcel is stuck 'in transit' in Leipzig since last Tuesday.
the parcel went to my old address, i updated it in my account but the order used the old one
Can you hold the shipment until I'm back from holiday on the 14th?
Which courier do you use? Mine refuses to deliver to parcel lockers.
Tracking says returned to sender, but I never refused anything.
I got someone else's parcel, addressed to a Mrs Lindqvist in Malmö.
Could you leave the parcel with the concierge? There's no one at the flat.
Is it possible to post the spare filter in a letter? A whole box seems excessive.
I ordered the descaler last week and there's no dispatch email yet.
You wrote dispatch within 2 working days, it's been five.
The box arrived open and the kettle was loose inside, but it seems to work.
Courier marked it as "address not accessible", our street is perfectly normal.
I'd like to split my order so the Mini arrives before Christmas and the rest later.
Will the delivery need a signature? I'm at work until six.
My neighbour signed for the parcel and now says she never got it.
Parcel shows delivered to a locker I never chose.
How long does delivery to Finland usually take?
The courier tried once and now says I have to collect it 20 km away.
Can I change the delivery day in the app? The link in the SMS doesn't load.
I need the order delivered to a hotel where I'm staying next week, is that ok?
Tracking stopped at 'handed to carrier' and nothing since.
My order arrived but the box contains the Mini, I ordered the One.
Does the kettle come in its own box or an extra outer box? It's a surprise present.
Is there any way to speed things up? I paid for express and it's still in the warehouse.
The courier left a card saying they'll come back Monday but I'm away then.
The delivery address on the confirmation is missing my flat number, will it still arrive?
Is the parcel insured if it gets lost on the way?
My order has been 'being packed' since Wednesday, what's going on?
The estimated delivery was yesterday. Nothing came, no email either.
Do you ship to Switzerland? It's not in the country list.
My parcel was delivered to the wrong town with a similar name.
Can someone call the driver? He's outside but can't find the entrance.
I received two tracking numbers for one order, which one is real?
The replacement you promised for my dented kettle hasn't been sent yet.
The label on my box has the wrong name on it.
We're moving on the 1st, please deliver to the new address only after that date.
Package stuck at customs in Norway for a week.
No notification before delivery, the parcel went to the depot because nobody opened.
My order is marked as shipped but the courier has no record of it.
Is weekend delivery possible? I work Monday to Friday.
Please add delivery instructions: the back door, not the front.
The parcel was left at the corner shop and they say they don't have it.
I'm still waiting for the spare parts I ordered a month ago.
Sent to the wrong country!! I live in Belgium, tracking says the Netherlands.
Can I reroute the parcel to a pick-up point now that it's already on its way?
the package was thrown over the fence, box is crushed but kettle ok i think
Will you combine my two orders into one delivery? I placed them an hour apart.
""",
    "technical": """
My kettle shows E2 every morning when I switch it on.
The Kettlebird Home app can't find the kettle during pairing.
The ring light flashes red and the water doesn't heat.
The water never gets to 100 degrees, it stops around 85.
It switches itself off before the water boils.
None of the buttons on the handle respond any more.
Since last night's firmware update the keep-warm function doesn't work.
There's a loud clicking noise from the base while it heats.
The kettle keeps dropping off my Wi-Fi every few hours.
Alexa says 'device not responding' when I ask it to boil water.
I noticed a burning smell coming from the base the last two times I used it.
The display is blank even though it's plugged in and the socket works.
E1 keeps appearing even when the kettle is full.
My router is 5 GHz only, is there any way to get the One connected?
The temperature presets go back to default every time I unplug it.
The lid won't stay closed, it pops open in the middle of boiling.
Water is leaking from the bottom after it heats.
I did the 10 second reset but the ring light doesn't blink blue.
The app shows the kettle as offline while it's sitting right next to the router.
Notifications that the water is ready stopped coming after I changed phones.
The kettle trips the fuse in our kitchen every time.
The Pro heats to 70 when I set 80, I checked with a thermometer.
E3 shows up even though the contacts are clean and dry.
Google Home doesn't list the kettle after linking, the link seems to succeed.
Boiling takes almost ten minutes now, it used to take three.
The water tastes of plastic after boiling, is something wrong inside?
The kettle turns on by itself at night. Scared it's a fault.
The firmware update has been stuck at 60% for two days.
When I schedule a boil in the app for 7:00 nothing happens.
The base gets really hot underneath, is that normal?
Steam comes out around the handle instead of the spout.
After descaling the kettle shows E2 and won't heat at all.
The + button is stuck and the temperature jumps around.
It beeps three times and shuts off, no error code on the display.
Pairing fails at step 3 with 'timeout, try again'.
The ring light stays amber forever even when keep-warm is off.
the kettle makes a humming noise even when its switched off
My Mini works only when I press the button really hard.
How do I update the firmware manually? The automatic update never happens.
The app crashes as soon as I open the kettle screen on my Android phone.
The Pro doesn't remember my custom 76 degree setting.
Is my kettle broken? It boils but the display shows 40 degrees the whole time.
The limescale filter keeps falling out when I pour.
My kettle stopped heating completely after a power cut.
Voice control worked yesterday, today Alexa can't find any devices.
The kettle is connected but the app says 'firmware incompatible'.
It boils, then starts boiling again a minute later without me touching it.
Water spits out of the spout when it's more than half full.
The kettle disconnects whenever the microwave is on.
The temperature in the app and on the kettle display don't match.
There's a crackling sound and a small spark when I put it on the base.
The keep-warm only lasts about five minutes instead of 30.
E2 came back after the reset, what now?
The kettle won't switch on unless I wiggle the cord.
Our second kettle won't show up in the app, the first one works fine.
I changed my Wi-Fi password and now the kettle is offline, how do I reconnect it?
Pressing power does nothing, the light flickers once and goes dark.
The lid sensor seems broken, it says lid open when it's shut.
The app tells me to update the kettle but the update button is greyed out.
Is it safe to keep using it? The bottom has a brown mark and smells odd.
Our kettle works fine but the child lock can't be turned off.
My kettle shows the wrong time since the clocks changed.
""",
    "account": """
I can't log in, and the password reset email never arrives.
Please change the email on my account to my new work address.
How do I delete my account and everything you've stored about me?
There's a kettle called 'Oma's kitchen' in my app that isn't mine.
I accidentally created two accounts, can you merge them?
My password stopped working after the app update.
Please stop sending me marketing emails, unsubscribe doesn't work.
The app logs me out every single day.
How can my husband control our kettle from his own phone with his own login?
I signed up with a typo in my email address and now can't verify it.
The two-factor codes by SMS never arrive.
Under GDPR I'd like a copy of all the data you hold about me.
Someone changed my password, I got an email I didn't ask for.
I can't see my old orders in my account, only the latest one.
How do I change the name on my account? I got married.
Can I log in with Google instead of a password?
I moved to Austria, how do I change the country in my profile? The app won't let me.
My account got locked after too many attempts, please unlock it.
I want to remove my saved address from the profile.
The verification link says it has expired, every time.
My late father had an account, how can we close it?
Can I have one account for the whole family with several kettles?
I never signed up but I got a 'welcome to Kettlebird' email.
How do I turn off the usage statistics the app collects?
I can't change my phone number in my profile, the save button does nothing.
Please transfer the kettle to my sister's account, I gave it to her.
Why do you need my date of birth to register?
I want to use a different email for order confirmations and the app.
my account shows the wrong language, everything is in Dutch
The newsletter keeps coming although I deleted my account last month.
How do I remove an old phone from the list of logged-in devices?
I forgot which email I used when I registered. Can you look it up by my order number?
I'd like to make my kid a guest user so he can't change the settings.
Can I order without creating an account?
I received a login code I didn't request, is my account hacked?
My profile picture upload fails every time.
The app asks me to accept new terms but nothing happens when I tap accept.
After reinstalling the app all my saved presets are gone, aren't they tied to my account?
How long do you keep my data after I delete the account?
I'm getting emails meant for someone called Jonas, he must have used my address.
Can you reactivate my account? I deleted it by mistake yesterday.
I want to change the password but I don't get the confirmation email.
Is it possible to have two admins on one household in the app?
The security question I set doesn't accept my answer.
Please unsubscribe me from the SMS offers.
My account says 'email not verified' though I clicked the link.
My ex still has access to our kettle through her account, how do I remove her?
Sign in with Apple isn't working anymore since I changed my Apple ID.
The loyalty points from my last order aren't showing in my account.
How do I update my delivery address in my profile for future orders?
I'd like to opt out of having my kettle data used for product research.
Your site won't let me create an account with a .info email address.
My account was merged with my wife's somehow, we see each other's orders.
The app keeps asking me to sign in again whenever I open the kettle page.
I changed my email but the confirmations still go to the old one.
The account page shows a shipping address in Berlin that I never entered.
Can I log into the website with my app account or are they separate?
I'd like to rename my household in the app from 'Home' to 'Studio'.
please close my account for good, I sold my kettle on ebay
The reset code is only valid for 5 minutes but the email takes longer than that to arrive.
""",
    "returns": """
I'd like to send the kettle back, it's too big for our kitchen.
Where do I print the return label? The link on the returns page gives an error.
I sent the kettle back three weeks ago and haven't got my money yet.
Can I swap the Mini for the One instead of returning it?
The return label says my address is invalid.
I got the kettle as a present and I already have one. Can I return it?
Do I need the original box for a return? I threw it away.
I want to return only one of the two kettles I ordered.
My refund was €20 less than what I paid.
The kettle is faulty and I want a refund, not a repair.
Could the courier pick up the return from my house? I don't have a car.
It's been 40 days since delivery, can I still return it?
I changed my mind about the colour, can I exchange the black One for a white one?
The app feature I wanted isn't on the Mini, so I'd like to return it.
My return was marked as received but the refund status hasn't changed.
Can I return the descaler I bought? It's unopened.
I returned the kettle with the filter missing, will I still get the full refund?
Is the return free if I bought during the sale?
I dropped the return parcel at the post office, how do I know it arrived?
The kettle has a scratch that I made, can I still send it back?
What happens to the free gift if I return the kettle?
Please cancel my return, I've decided to keep it.
The return form asks for a reason and none of them fits.
Can I return the replacement base? It was the wrong one for my model.
I'd like to return the Pro for the cheaper Mini and get the difference back.
The refund went to Paypal but I paid by card. Where is it?
i want to return it, it's too loud. how do i start?
Can I bring the kettle back to the shop in Hamburg instead of posting it?
How long after you receive my return do I get the money?
My return was rejected because of 'signs of use', but your policy says used is fine.
I returned two items in one box, only one was refunded.
Does the 45 day return period start from the order date or the delivery date?
The returns page asks for an order number but I ordered by phone.
I don't have a printer, can you email the return label as a QR code?
We got two kettles as wedding gifts and need to return one without a receipt.
I'd like to return the kettle because it doesn't match the description 'silent boil'.
The courier lost my return parcel, do I still get refunded?
Can I return a kettle bought from a different shop?
Is there a restocking fee if I open the box?
I want to send back the spare lid seal, it's the wrong size.
My returned kettle came back to me with a note 'address unknown'.
I'm abroad for a month; can I return it after the 45 days?
The kettle I got as a replacement is also broken. I just want my money back now.
Can you send me a box for the return? Mine was damaged.
I sent back the wrong kettle by mistake, my old one instead of the new one!
Will I get the delivery costs back if I return everything?
My return label expired before I could send it, can I get a new one?
How do I return an item from a bundle, just the teapot?
My order was cancelled but you shipped it anyway, I want to send it back.
Can you extend the return window? I was in hospital.
The return confirmation email never came, is the return registered?
I'd rather have store credit than a refund, is that possible?
Does the refund include the €4.90 I paid for delivery?
I've had it for a week and the design just isn't for me, please arrange a return.
How do I pack the kettle for return? Does the base go in the same box?
The gift receipt has no price on it, how much will the refund be?
I returned it ten days ago, tracking says delivered to you, still no refund.
Can I return a kettle that has already been descaled a few times?
Please take back the Pro, my parents find the touch controls too complicated.
Returning the Mini: does the cup that came with it have to go back too?
I want a refund for the kettle, the app never worked on my phone.
Do I have to reset the kettle and remove it from the app before sending it back?
""",
    "feedback": """
Love the Pro, but please make a version with a glass body so I can see the water.
It would be great if the app showed how much energy each boil uses.
Just wanted to say the Mini is perfect for my tiny flat. Thanks!
Suggestion: add a 75 degree preset for white tea on the One.
The ring light is too bright at night, could you add a dimmer in the next update?
Please offer the One in dark green, all the colours are too pale.
Your kettle is much quieter than my old one, well done.
The handle gets slippery with wet hands, a rubber grip would help.
Idea for the app: let us schedule a boil for every weekday at once.
I'd pay more for a version with a longer cord, 75 cm is short for my kitchen.
The Pro's beep is really loud, please let us turn the sound off.
The new app design is confusing, I preferred the old home screen.
Have you thought about a travel version with dual voltage?
The lid opens too fast and splashes, a softer hinge would be nice.
The descaling reminder in the app is super helpful, thanks for adding it.
It would be nice if the Mini kept water warm for longer than 20 minutes.
Could the kettle play a short melody when the water is ready? My kids would love it.
My only complaint: the MAX line is hard to see inside the steel.
A Kettlebird milk frother would go perfectly with the kettle. Any plans?
Please make the app work on tablets in landscape mode.
The packaging was lovely and all recyclable, great job.
I wish the spout poured more slowly for pour-over coffee, like a gooseneck.
Add Apple HomeKit support please! Alexa and Google aren't enough.
The temperature digits are too small for my grandmother to read.
Feedback on the One: the base is too big for small counters.
The Pro is the best kitchen gadget I've bought this year.
Would love a widget on the phone home screen to start the kettle.
Your manual is really clear, but a video for descaling would help.
I think €8 for a spare filter is too much for a small piece of plastic.
Please sell a matching toaster!
The app should let me name presets like 'green tea' instead of just numbers.
Why isn't there a version in matt black? Every other brand has one.
The amber keep-warm light is a nice touch, easy to see from the table.
The button layout could be more intuitive, I keep pressing + instead of power.
It would be good to have cup markings inside, not only MIN and MAX.
I'm very happy with the help I got from your team last month, thanks to Lena.
A dark mode for the Kettlebird Home app would be appreciated.
Suggestion: a water filter built into the lid for hard water areas.
The kettle looks great but the steel shows every fingerprint.
Could you publish the energy consumption per litre on the product page?
Just a heads up: the German translation in the app has some typos.
Please make the Mini available with Wi-Fi, I'd buy it immediately.
The One is a bit heavy when full; a lighter model would suit older people.
I'd like the app to keep a history of my boils, just for fun.
Great product, terrible colour names on the website though :)
Could you add a 'baby formula' preset at 70 degrees with a longer keep warm?
The click when it switches off is so satisfying. Thanks for a great kettle.
Would you consider a kettle with a removable tank for easier filling?
Your product photos make the Mini look bigger than it is, maybe add a size comparison.
The voice assistant integration is brilliant, I use it every morning.
Please make the base work for left-handed people, the cord always ends up in the way.
Let us set the keep-warm time in the app, 30 minutes is too short for us.
The kettle is lovely but it would be even better with a tea infuser basket.
The firmware update notes are too vague, please tell us what changed.
""",
}


def ticket_rows() -> list[tuple[str, str]]:
    rows = [(text, department) for department, block in TICKETS.items()
            for text in block.strip().splitlines()]
    random.Random(11).shuffle(rows)
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
