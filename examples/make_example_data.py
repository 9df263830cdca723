#!/usr/bin/env python3
"""Generate the small synthetic example data that ships with polyhead.

All text is produced from hand-written templates and slot lists in this file
(written for polyhead, not taken from any public dataset).  The theme is the
support inbox of a fictional online electronics shop, "VoltCart".  Two layouts,
the two that a polyhead config accepts:

* inbox -> examples/data/inbox/{train,dev}.jsonl: ONE dataset in which every
  message carries every label: ``intent`` (7 labels, including ``feedback`` for
  thanks, reviews and anything that asks for nothing), ``sentiment``
  (negative / neutral / positive) and ``tags`` (IOB2 entities over ``tokens``;
  many messages have none).  ``text`` is the message as written, for reading.
* ner   -> examples/data/ner/{train,dev}.conll: a task's own files, in CoNLL
  ("token TAG" lines): extra sentences dense in entities (names, brands,
  places) that the NER task trains on besides the inbox.

Labelling rules (what a person reading the message would say)
-------------------------------------------------------------
* sentiment: ``negative`` when the message reports something that went wrong
  (a delay, damage, a fault, a refused refund) or complains; ``neutral`` for a
  plain question or request, even with "thanks" or "hi" around it;
  ``positive`` for thanks and praise.  A polite request with a happy aside
  ("... Love the shop, by the way!") is positive.
* intent: what the sender wants; ``feedback`` when they want nothing (a
  review, a thank-you, a complaint without a request, "received, thanks").
* entities: PER (people), ORG (brands, shops, carriers, payment providers),
  LOC (cities, countries), PRODUCT (the product name only: in "Zephyr X2
  headphones" the category noun "headphones" is O; "the laptop" has none).

Design notes
------------
* Deterministic: a single ``random.Random(SEED)`` drives everything.
* Dev is not a copy of train with new slot values: a quarter of the templates
  of every (intent, sentiment) cell, and for the CoNLL part a quarter of the
  entity names, appear only in dev.
* Train and dev never share an identical text, and no generated text is one of
  the sentences that ``polyhead demo`` and the README screenshot show
  (``SHOWN``): those are for judging the trained model, not for learning.

Standard library only.  Run from anywhere:

    python examples/make_example_data.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

SEED = 20240611
OUT = Path(__file__).resolve().parent / "data"

# fraction of templates (and CoNLL entity names) that only appear in dev
HOLDOUT = 0.25
# share of dev examples drawn from held-out templates (rest: train templates, new fills)
DEV_FROM_HELDOUT = 0.6
# inbox messages per intent
INBOX_TRAIN, INBOX_DEV = 120, 28
# extra entity-dense CoNLL sentences for the NER task's own files
NER_TRAIN, NER_DEV = 150, 40

# The texts `polyhead demo` (src/polyhead/cli/demo.py) and tools/screenshot_playground.py show:
# the generator refuses to emit any of them (compared case- and space-insensitively).
SHOWN = [
    "Anna Schmidt ordered the Zephyr X2 headphones from Berlin and they arrived broken. I want a refund.",
    "Thanks, the replacement laptop works perfectly!",
    "How do I change the email address on my account?",
    "Hello, Anna Schmidt from Berlin here: I want a refund for my broken Zephyr X2 headphones.",
    "Thanks, the replacement laptop from VoltCart works perfectly!",
    "Can DHL deliver my order to Madrid on Saturday?",
]

# --------------------------------------------------------------------------
# slot values; entity slots carry their type
# --------------------------------------------------------------------------

# (name, category): the name is a PRODUCT entity, the category noun is O; name None = generic
PRODUCTS = [
    ("Zephyr X2", "headphones"), ("NovaTab 10", "tablet"), ("Pixelon S7", "phone"),
    ("Quanta Watch 3", "smartwatch"), ("Strato AX6", "router"), ("Echoline", "soundbar"),
    ("Auralis Mini", "speaker"), ("Volta 65W", "charger"), ("Lumen 4K", "webcam"),
    ("Orbit TKL", "keyboard"), ("Glide M2", "mouse"), ("Kairo Plug", "smart plug"),
    ("Helix H5", "headset"), ("Brisa Paper", "e-reader"), ("Terra 20000", "power bank"),
    ("Nimbus Buds", "earbuds"), ("Prism 27", "monitor"), ("Atlas Go", "action camera"),
    ("Cove Bell 2", "doorbell"), ("Sonique Arc", "headphones"), ("Flux Dock", "docking station"),
    ("Aero Pad 11", "tablet"), ("Kinetic K3", "drone"), ("Pulse Band 2", "fitness tracker"),
    ("Stellar Beam", "projector"), ("Ridge Pro", "laptop"), ("Vela 14", "laptop"),
    (None, "laptop"), (None, "phone"), (None, "tablet"), (None, "router"), (None, "headphones"),
    (None, "smartwatch"), (None, "charger"), (None, "keyboard"), (None, "speaker"),
    (None, "webcam"), (None, "monitor"), (None, "printer"), (None, "mini PC"),
    (None, "baby monitor"), (None, "gaming mouse"), (None, "robot vacuum"), (None, "dash cam"),
]
CITIES = [
    "Berlin", "Lyon", "Manchester", "Rotterdam", "Porto", "Krakow", "Dublin", "Toronto",
    "Osaka", "Cape Town", "Glasgow", "Valencia", "Gothenburg", "Brno", "Leeds", "Antwerp",
    "Milan", "Vancouver", "Melbourne", "Austin", "Madrid", "Hamburg", "Lisbon", "Vienna",
    "Seville", "Munich", "Oslo", "Nairobi",
]
COUNTRIES = [
    "Germany", "France", "Spain", "Ireland", "Poland", "Canada", "Norway", "Switzerland",
    "Australia", "Japan", "Portugal", "Italy", "the Netherlands", "Sweden", "Austria",
    "the United States", "Denmark", "Belgium",
]
CARRIERS = [  # ORG, except the generic ones
    "DHL", "UPS", "FedEx", "DPD", "Royal Mail", "PostNL", "GLS", "Hermes", "La Poste",
    "Canada Post", "InPost", "Evri", "the courier", "the post office",
]
GENERIC_CARRIERS = {"the courier", "the post office"}
BRANDS = [  # ORG: manufacturers and shops
    "Kestrel Audio", "Brightwave", "Nordvolt", "Halcyon Labs", "Lumatek", "Orbisonic",
    "Samsung", "Sony", "Logitech", "Anker", "Apple", "Google", "Bluefen Audio", "Harbor Tech",
]
SHOPS = ["VoltCart", "VoltCart", "VoltCart", "Gadget Garage", "Redline Electronics"]
PAYS = ["PayPal", "Klarna", "Visa", "Mastercard", "Apple Pay", "Revolut"]
FIRST = [
    "Marta", "Daniel", "Priya", "Tom", "Aiko", "Samuel", "Lea", "Jonas", "Fatima", "Oliver",
    "Noor", "Lucas", "Hannah", "Mateo", "Ines", "Mark", "Sven", "Beatriz", "Kemal", "Louise",
    "Ade", "Mia", "Pavel", "Rachel", "Tariq", "Greta", "Kofi", "Sofia", "Chloe", "Ravi",
]
LAST = [
    "Lopez", "Becker", "Natarajan", "Tanaka", "Okafor", "Martin", "Grant", "Haddad", "Silva",
    "Novak", "Ruiz", "Duarte", "Lindqvist", "Mensah", "Rossi", "Karimi", "Kowalska", "Walsh",
    "Jimenez", "de Vries", "Dubois", "Shah", "Yilmaz", "Nowak", "Fontaine", "Weber", "Fischer",
]
DURATIONS = ["three days", "a week", "two weeks", "ten days", "48 hours", "five days",
             "over a month", "nearly three weeks", "four days", "a fortnight"]
USE_TIMES = ["two days", "a week", "a month", "three months", "six months", "a year",
             "two weeks", "ten days", "a few weeks", "four months"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ASPECTS = ["battery life", "sound quality", "screen", "build quality", "setup process",
           "noise cancelling", "camera", "charging speed", "companion app", "microphone",
           "keyboard feel", "range", "picture quality", "fit", "connection stability"]
ERROR_CODES = ["E12", "E45", "0x1F", "E301", "ERR-7", "E08", "C2", "E99"]

TOKEN_RE = re.compile(r"\{\w+\}|[\w]+(?:[-'.:][\w]+)*|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


def person(rng: random.Random) -> str:
    return rng.choice(FIRST) if rng.random() < 0.35 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def order_number(rng: random.Random) -> str:
    return f"#{rng.randint(10000, 99999)}" if rng.random() < 0.5 else f"VC-{rng.randint(100000, 999999)}"


Segment = tuple[str, "str | None"]  # (text, entity type or None)


def slot_value(slot: str, ctx: dict, rng: random.Random) -> list[Segment]:
    """The segments one {slot} becomes; a slot used twice in a template gets one value."""
    cap = slot[:1].isupper()
    key = slot.lower()
    if key in ("product", "product2"):
        other = ctx.get("product2" if key == "product" else "product")
        name, category = rng.choice([p for p in PRODUCTS if p != other])
        ctx[key] = (name, category)
        if name is None:
            return [(category, None)]
        if rng.random() < 0.3:
            return [(name, "PRODUCT")]
        return [(name, "PRODUCT"), (" " + category, None)]
    if key == "carrier":
        c = rng.choice(CARRIERS)
        if c in GENERIC_CARRIERS:
            return [((c[0].upper() + c[1:]) if cap else c, None)]
        return [(c, "ORG")]
    if key in ("city", "country"):
        v = rng.choice(CITIES if key == "city" else COUNTRIES)
        if v.startswith("the "):
            return [("The " if cap else "the ", None), (v[4:], "LOC")]
        return [(v, "LOC")]
    if key in ("person", "agent"):
        return [(person(rng) if key == "person" else rng.choice(FIRST), "PER")]
    if key in ("brand", "shop", "pay"):
        return [(rng.choice({"brand": BRANDS, "shop": SHOPS, "pay": PAYS}[key]), "ORG")]
    if key == "aspect":
        a = rng.choice(ASPECTS)
        return [((a[0].upper() + a[1:]) if cap else a, None)]
    if key == "order":
        return [(order_number(rng), None)]
    lists = {"days": DURATIONS, "time": USE_TIMES, "day": WEEKDAYS, "code": ERROR_CODES}
    return [(rng.choice(lists[key]), None)]


def render(template: str, rng: random.Random) -> list[Segment]:
    ctx: dict = {}
    seen: dict[str, list[Segment]] = {}
    out: list[Segment] = []
    for part in re.split(r"(\{\w+\})", template):
        m = re.fullmatch(r"\{(\w+)\}", part)
        if not m:
            if part:
                out.append((part, None))
            continue
        slot = m.group(1)
        if slot not in seen:
            seen[slot] = slot_value(slot, ctx, rng)
        out.extend(seen[slot])
    # "a Auralis" -> "an Auralis"
    for i in range(len(out) - 1):
        text, etype = out[i]
        if etype is None and text.endswith(" a ") and out[i + 1][0][:1] in "AEIOaeio":
            out[i] = (text[:-2] + "an ", None)
    return out


def tag_segments(segments: list[Segment]) -> tuple[str, list[str], list[str]]:
    """The text, its tokens and their IOB2 tags."""
    tokens: list[str] = []
    tags: list[str] = []
    for text, etype in segments:
        for i, tok in enumerate(tokenize(text)):
            tokens.append(tok)
            tags.append("O" if etype is None else ("B-" if i == 0 else "I-") + etype)
    return "".join(t for t, _ in segments), tokens, tags


def join_styled(opener: str, body: str, closer: str) -> str:
    """Glue opener + template body + closer; lower-case the body's first letter
    after an opener that does not end a sentence, unless it starts a slot, "I",
    or a word like "Wi-Fi"."""
    if opener and not opener.endswith(". "):
        first = body.split(" ", 1)[0]
        keep = (body.startswith("{") or first in ("I", "I'm", "I've", "I'd")
                or any(c.isupper() for c in first[1:]))
        if not keep:
            body = body[0].lower() + body[1:]
    return opener + body + closer


# --------------------------------------------------------------------------
# 1. the inbox: intent x sentiment templates, entities from the slots
# --------------------------------------------------------------------------

INBOX: dict[str, dict[str, list[str]]] = {
    "order_status": {
        "neutral": [
            "Where is my order {order}?",
            "Can you tell me the status of order {order}?",
            "Has my order {order} been dispatched yet?",
            "My account shows order {order} as pending, is that normal?",
            "When will my {product} order leave your warehouse?",
            "Any update on order {order}?",
            "How long does an order normally stay in 'processing' before it ships?",
            "order {order} status pls",
            "I need to know if order {order} will be ready before {day}.",
            "What does 'awaiting fulfilment' mean on order {order}?",
            "I'd like an update on the {product} I ordered last {day}.",
            "Could you confirm that you received my order for the {product}?",
            "Is my pre-order of the {product} still going to ship on release day?",
            "Has anyone picked my order yet? It's {order}.",
            "Can you check if order {order} is waiting on my payment?",
            "Is the {product} I ordered in your warehouse or on backorder?",
            "Has order {order} been handed over to {carrier} yet?",
            "What stage is order {order} at?",
            "Can you check whether my order for the {product} went through?",
            "I ordered the {product} and the {product2} together, will they ship at the same time?",
        ],
        "negative": [
            "I placed an order for the {product} {days} ago and it still says processing.",
            "I ordered the {product} on {day} and have heard nothing since.",
            "The order page has said 'preparing' for {days}, what is going on?",
            "I was charged but I don't see an order number, did my order even go through?",
            "My order {order} was split in two and I can only see one part.",
            "It has been {days} since I bought the {product} and the status has not changed at all.",
            "My order has been stuck for {days}, is there a backlog on the {product}?",
            "I got an email saying my order was put on hold and nobody explained why.",
            "Order {order} disappeared from my order history, was it cancelled?",
            "You said order {order} would be processed within 24 hours, that was {days} ago.",
            "I'm chasing order {order}, nobody has replied to my last two emails.",
            "I paid for express delivery but my order hasn't even been packed after {days}.",
            "The status page for order {order} is blank and nobody answers my emails.",
            "Why does my order for the {product} still say 'payment under review' after {days}?",
        ],
    },
    "shipping": {
        "neutral": [
            "Do you ship to {country}?",
            "How much does express delivery to {city} cost?",
            "Can I change the delivery address for order {order} to {city}?",
            "Do you offer next-day delivery?",
            "Is shipping free on orders over fifty euros?",
            "Which carrier do you use for deliveries to {country}?",
            "Can I collect my order from a parcel locker instead?",
            "Will I have to pay import duties if you ship the {product} to {country}?",
            "How long does standard delivery take to {city}?",
            "The delivery is booked for {day} but I'm away, can {carrier} hold it?",
            "Can you send the {product} in plain packaging? It's a gift.",
            "Do you deliver on weekends in {city}?",
            "Is it possible to combine my two orders into one delivery?",
            "What is the cut-off time for same-day delivery in {city}?",
            "Can I get the {product} delivered to my office?",
            "Does {carrier} deliver to {city} on {day}?",
            "Can you ship to a PO box in {country}?",
            "I'm moving house next week, can my order go to the new address?",
            "Can I pick the parcel up myself from the depot in {city}?",
            "Which days does {carrier} deliver in {country}?",
        ],
        "negative": [
            "The tracking from {carrier} says delivered but nothing arrived.",
            "{Carrier} tracking for my parcel hasn't updated in {days}.",
            "{Carrier} left my {product} with a neighbour I've never met.",
            "My parcel is stuck at customs in {country} and nobody can tell me why.",
            "The box arrived crushed and the driver wouldn't wait while I checked it.",
            "Why was I charged for postage when the site said delivery was free?",
            "Tracking has said 'out for delivery' since yesterday morning.",
            "The parcel went to my old address in {city} even though I updated it.",
            "The tracking link you sent me for order {order} just gives an error page.",
            "The courier marked my parcel as 'recipient not available' but I was home all day.",
            "My parcel has been sitting at the {city} depot for {days}.",
            "{Carrier} wants me to pay a handling fee before they deliver, that's ridiculous.",
            "The {product} was sent in a bag with no padding and the corner is dented.",
            "My parcel with {carrier} has not moved from {city} since {day}.",
        ],
    },
    "refund": {
        "neutral": [
            "How do I start a return for the {product}?",
            "Do I have to pay for the return postage on the {product}?",
            "Your returns page says thirty days, is that from delivery or from purchase?",
            "Can I return an opened {product} if it's unused?",
            "How long do refunds take to show up on {pay}?",
            "I'd like to return the {product}, it was a gift and we already have one.",
            "Can I cancel order {order} and get a full refund?",
            "What's the status of the return I sent for order {order}?",
            "I dropped the {product} off at a return point in {city}, has it reached you yet?",
            "Please cancel the {product} from my order and refund it, I only need the {product2}.",
            "Can I swap the {product} for a cheaper model and get the difference back?",
            "Is the restocking fee refundable?",
            "I'd like to send the {product} back for a refund, how do I do that?",
            "Can the refund for order {order} go to my {pay} account?",
        ],
        "negative": [
            "I sent the {product} back {days} ago and still no refund.",
            "I was charged twice for the {product}, please refund one of the payments.",
            "The refund went to a card I no longer have and nobody will help me.",
            "You only refunded part of what I paid for order {order}.",
            "I never agreed to this extended warranty charge, please reverse it.",
            "The {product} arrived damaged and I want my money back, not a replacement.",
            "My bank has shown the refund as pending for {days}.",
            "Store credit is no use to me, I asked for the money to go back to my card.",
            "Your agent {agent} promised a refund {days} ago and nothing has arrived.",
            "The {product} keeps crashing and I've had enough, I want my money back.",
            "The parcel never arrived, so please refund me instead of sending another one.",
            "Order {order} was cancelled by you, so where is my money?",
            "I've already had two faulty {product} units, this time I want a refund.",
            "The {product} came with a cracked screen, I'd like a refund.",
            "My {product} arrived broken, I'd like my money back.",
            "The {product} broke after a week, can I get a refund?",
            "I want a refund for the broken {product} I got from you.",
            "{person} from {city} here, my {product} is faulty and I want a refund.",
            "{person} here, the {product} stopped working after a day and I want my money back.",
        ],
    },
    "technical_issue": {
        "neutral": [
            "How do I factory reset the {product}?",
            "How do I update the firmware on my {product}?",
            "Where do I find the serial number on the {product}?",
            "What does the blinking blue light on the {product} mean?",
            "How do I pair the {product} with a second phone?",
            "What does error {code} on the {product} mean?",
        ],
        "negative": [
            "My {product} won't turn on since the latest update.",
            "The {product} keeps disconnecting from Bluetooth.",
            "I charged the {product} overnight and it still shows zero percent.",
            "The screen on my {product} flickers when brightness is low.",
            "I can't get the {product} to pair with my phone.",
            "The companion app crashes every time I open the settings for my {product}.",
            "My {product} gets really hot while charging.",
            "The firmware update failed halfway and now the {product} is stuck on the logo.",
            "There is a buzzing noise coming from the left side of the {product}.",
            "Wi-Fi keeps dropping on the {product} every few minutes.",
            "The {product} restarts by itself several times a day.",
            "People on video calls can't hear me through the {product}.",
            "The battery on my {product} goes from full to empty in two hours.",
            "My laptop doesn't detect the {product} when I plug it in.",
            "The {product} shows code {code} and then shuts down.",
            "My {product} was working fine until today and now the display stays black.",
            "The {product} you shipped me last week now freezes whenever I open the camera.",
            "Since the {product} arrived it has never once connected to my Wi-Fi.",
            "The {product} makes a high-pitched whine when it's idle.",
            "Half of the keys on the {product} register twice.",
        ],
    },
    "account": {
        "neutral": [
            "How do I stop all the marketing emails?",
            "I want to update the billing address saved in my profile.",
            "Can I merge two accounts I created by mistake?",
            "How do I remove a saved card from my account?",
            "Where can I download invoices for my past orders?",
            "How do I set up a business account for my company?",
            "Can I add my partner as a second user on my account?",
            "Where do I request a copy of the personal data you hold on me?",
            "Can I change my username without losing my order history?",
            "How do I unsubscribe from the newsletter without closing my account?",
            "Can you reactivate the account I closed last year?",
            "How do I turn on two-step verification for my login?",
            "Can you change the email on my account so updates go to my work address?",
            "How do I change the default delivery address saved in my profile?",
            "I placed an order as a guest, can I attach it to my account now?",
            "Please delete my account and all of my personal data.",
            "How do I update the phone number on my account?",
            "Where do I change my password?",
            "Can I use my {pay} account to log in?",
            "How do I update my email address?",
        ],
        "negative": [
            "I can't log in, the password reset email never arrives.",
            "Someone placed an order from my account that I don't recognise.",
            "My account got locked after too many login attempts.",
            "The two-factor code isn't being sent to my phone.",
            "My loyalty points have vanished from my account.",
            "The site logs me out every few minutes and I have to sign in again.",
            "My name is spelled wrong on my account and I can't fix it.",
            "The password reset link says it has expired every time I click it.",
            "I got a 'suspicious login from {city}' alert but it wasn't me.",
            "My saved addresses disappeared from my profile.",
            "I'm not getting the verification email to activate my new account.",
            "Why does my account say my membership expired when I paid for a year?",
            "I can't see any of my orders when I log in, did my account get wiped?",
            "The site won't accept my new password even though it meets all the rules.",
            "Someone changed the password on my account and ordered a {product}.",
        ],
    },
    "product_question": {
        "neutral": [
            "Does the {product} work with an iPhone?",
            "What is the battery life of the {product}?",
            "Is the {product} waterproof?",
            "Does the {product} come with a charger in the box?",
            "What's the difference between the {product} and the {product2}?",
            "Will the {product} be back in stock soon?",
            "Can I use the {product} with a UK plug?",
            "How long is the warranty on the {product}?",
            "Does the {product} support fast charging?",
            "Is the {product} compatible with Windows laptops?",
            "What colours does the {product} come in?",
            "How much does the {product} weigh?",
            "Is a newer version of the {product} coming out this year?",
            "Which is better for gaming, the {product} or the {product2}?",
            "Does the {product} need an app to work?",
            "Do you sell replacement parts for the {product}?",
            "Will the {product} work with the {product2} I already have?",
            "Does the {product} work in {country} with the local voltage?",
            "Is the {product} made by {brand}?",
            "Does the {product} work with {brand} accessories?",
            "Is the {product} refurbished or brand new?",
            "Can the {product} be used outdoors in the rain?",
            "Is there a bundle deal if I buy the {product} with the {product2}?",
        ],
    },
    "feedback": {
        "positive": [
            "The {product} arrived early and works perfectly.",
            "Really impressed with the {aspect} on the {product}.",
            "{agent} from support sorted out my problem in minutes, thank you!",
            "I was sceptical at first, but the {product} has been excellent for {time} now.",
            "Not cheap, but worth every penny.",
            "The {product} is the best purchase I've made this year.",
            "Thanks for the quick refund, the whole process was painless.",
            "Five stars, the {product} does exactly what it says.",
            "Love it. The whole family uses the {product} every day.",
            "Your team replaced my faulty unit without any fuss, really appreciated.",
            "Quiet, fast and easy to use, I'm very happy with the {product}.",
            "After {time} of daily use the {product} still feels brand new.",
            "Great communication from start to finish, I always knew where my parcel was.",
            "Just wanted to say thanks, the {product} is fantastic.",
            "Thanks a lot, the new {product} works like a charm!",
            "Many thanks, everything arrived in perfect condition.",
            "Thank you {agent}, the {product} you sent is working great.",
            "Delivery was a day late, but the {product} itself is brilliant.",
            "Best online shop I know, {shop} never disappoints.",
            "{Carrier} was quick and the {product} was packed really carefully.",
            "Thanks so much, the {product} is exactly what I needed!",
            "Bought a second {product} for my partner because the first one is so good.",
        ],
        "negative": [
            "Not worth the money, it feels cheap and flimsy.",
            "Never again. Wrong item sent twice and not even an apology.",
            "Your chat bot goes round in circles and I can't reach a human.",
            "I'd give zero stars if I could.",
            "Great price, awful {aspect}.",
            "I loved my last one, which makes this {product} a real letdown.",
            "Every update makes the {product} slower.",
            "Three weeks, two tickets, zero answers.",
            "Would not recommend the {product}, save your money.",
            "The {aspect} is a joke for this price.",
            "Very disappointed with the {aspect} on the {product}.",
            "Support promised a call back three times and nobody ever called.",
            "Cheap plastic, creaky hinges, and the {aspect} is below average.",
            "Thanks for nothing, that was the worst support chat I've ever had.",
            "Honestly, the service from {shop} has gone downhill.",
        ],
        "neutral": [
            "Just letting you know the parcel arrived.",
            "No need to reply, I found the answer in the manual.",
            "Please ignore my previous email, it's sorted.",
            "A suggestion: it would be useful to filter products by colour.",
            "Received, thanks.",
            "OK, noted.",
            "I'll be in touch once I've tried the steps you sent.",
            "Forwarding this to my colleague {person}, who handles our orders.",
            "Got it, I'll wait for the courier then.",
            "Out of office: I'm away until {day} with limited access to email.",
            "Just confirming that I received the invoice for order {order}.",
            "This is a test message from our office in {city}.",
        ],
    },
}

OPENERS = ["", "", "", "", "", "Hi, ", "Hello, ", "Hi there, ", "Good morning, ", "Hey, ",
           "Hi, this is {person}. ", "{person} here. ", "Dear {shop} team, "]
CLOSERS = ["", "", "", "", "", " Thanks.", " Thank you!", " Thanks in advance.", " Cheers.",
           " Regards, {person}.", " Best, {person}"]
# a complaint said outright: only after a body that is already negative
ANGRY = [" This is really frustrating.", " Very disappointed.", " Not impressed at all.",
         " I'm losing patience.", " This is unacceptable."]
# a happy aside that makes a plain request positive
HAPPY = [" Love the shop, by the way!", " Great service so far, thank you!",
         " You've been brilliant so far, thanks!", " Really happy with my last order, by the way."]

# share of each intent's messages per sentiment (intents without a cell renormalise)
SENTIMENT_SHARE = {"neutral": 0.45, "negative": 0.4, "positive": 0.15}


def style(template: str, sentiment: str, body_sentiment: str, rng: random.Random) -> list[Segment]:
    """Opener + body + tone + closer, rendered to segments."""
    tone = ""
    if sentiment == "positive" and body_sentiment == "neutral":
        tone = rng.choice(HAPPY)
    elif sentiment == "negative" and rng.random() < 0.3:
        tone = rng.choice(ANGRY)
    closer = rng.choice(CLOSERS) if sentiment != "positive" or rng.random() < 0.5 else ""
    opener = rng.choice(OPENERS)
    text = join_styled(opener, template, tone + closer)
    segments = render(text, rng)
    if rng.random() < 0.06:  # sloppy inbox style
        segments = [(t.lower(), e) for t, e in segments]
        segments[-1] = (segments[-1][0].rstrip(".!"), segments[-1][1])
    return segments


def norm(text: str) -> str:
    return " ".join(tokenize(text.lower()))


def split_templates(templates: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    t = list(templates)
    rng.shuffle(t)
    k = max(1, round(len(t) * HOLDOUT)) if len(t) >= 4 else 0
    return t[k:], t[:k]  # train templates, held-out (dev-only) templates


def build_inbox(rng: random.Random) -> tuple[list[dict], list[dict]]:
    shown = {norm(t) for t in SHOWN}
    taken: set[str] = set()
    train: list[dict] = []
    dev: list[dict] = []

    def draw(intent: str, sentiment: str, body_sentiment: str, templates: list[str], n: int, out: list) -> None:
        order = list(templates)
        rng.shuffle(order)
        i = tries = 0
        got = 0
        while got < n:
            tries += 1
            if tries > 200 * n:
                raise RuntimeError(f"could not generate enough unique {intent}/{sentiment} messages")
            segments = style(order[i % len(order)], sentiment, body_sentiment, rng)
            i += 1
            text, tokens, tags = tag_segments(segments)
            key = norm(text)
            if key in taken or key in shown:
                continue
            taken.add(key)
            out.append({"text": text, "tokens": tokens, "tags": tags, "intent": intent, "sentiment": sentiment})
            got += 1

    for intent, cells in INBOX.items():
        # which sentiments this intent's messages carry, and from which template cell
        plan = {s: s for s in cells}
        if "positive" not in cells and "neutral" in cells:
            plan["positive"] = "neutral"  # a plain request with a happy aside
        total = sum(SENTIMENT_SHARE[s] for s in plan)
        splits = {cell: split_templates(templates, rng) for cell, templates in cells.items()}
        for sentiment, body in plan.items():
            share = SENTIMENT_SHARE[sentiment] / total
            n_train, n_dev = round(INBOX_TRAIN * share), round(INBOX_DEV * share)
            tr_t, ho_t = splits[body]
            n_ho = round(n_dev * DEV_FROM_HELDOUT) if ho_t else 0
            draw(intent, sentiment, body, tr_t, n_train, train)
            draw(intent, sentiment, body, ho_t, n_ho, dev)
            draw(intent, sentiment, body, tr_t, n_dev - n_ho, dev)
    rng.shuffle(train)
    rng.shuffle(dev)
    return train, dev


# --------------------------------------------------------------------------
# 2. extra NER sentences (the ner task's own CoNLL files), dense in entities
# --------------------------------------------------------------------------

NER_PER = [
    "Maria Lopez", "Tom Becker", "Priya Natarajan", "Jonas", "Aiko Tanaka", "Samuel Okafor",
    "Lea Martin", "Chen Wei", "Fatima Zahra", "Oliver Grant", "Noor Haddad", "Lucas Silva",
    "Hannah Novak", "Mateo Ruiz", "Ines Duarte", "Erik Lindqvist", "Grace", "Daniel",
    "Marta", "Kofi Mensah", "Sofia Rossi", "Ahmed Karimi", "Julia Kowalska", "Ben O'Connor",
    "Yuki", "Rosa Jimenez", "Pieter de Vries", "Anna-Lena Vogt", "Omar", "Chloe Dubois",
    "Ravi Shah", "Emma Walsh", "Mehmet Yilmaz", "Lina", "Tomasz Nowak", "Claire Fontaine",
]
NER_ORG = [  # brands, manufacturers, shops
    "VoltCart", "Kestrel Audio", "Brightwave", "Nordvolt", "Halcyon Labs", "Lumatek",
    "Orbisonic", "Quillon Systems", "Tidewell", "Ferrocore", "Apple", "Samsung", "Sony",
    "Logitech", "Anker", "Microsoft", "Google", "Redline Electronics", "Gadget Garage",
    "Sparrow Mobile", "Corvid Networks", "Asteria", "Bluefen Audio", "Harbor Tech",
]
NER_PAY = [  # payment providers (also tagged ORG)
    "PayPal", "Klarna", "Visa", "Mastercard", "American Express", "Apple Pay", "Google Pay",
    "Revolut", "Stripe", "iDEAL", "Afterpay",
]
NER_CARRIER = [
    "DHL", "UPS", "FedEx", "DPD", "Royal Mail", "PostNL", "GLS", "Hermes", "La Poste",
    "Canada Post", "Correos", "Australia Post", "InPost", "Evri", "Bring",
]
NER_LOC = [
    "Berlin", "Lyon", "Manchester", "Rotterdam", "Porto", "Krakow", "Dublin", "Toronto",
    "Osaka", "Cape Town", "Glasgow", "Valencia", "Gothenburg", "Brno", "Leeds", "Antwerp",
    "Milan", "Vancouver", "Melbourne", "Austin", "New York", "Sao Paulo", "Mexico City",
    "Germany", "France", "Spain", "Ireland", "Poland", "Canada", "Norway", "Switzerland",
    "Australia", "Japan", "Portugal", "Italy", "the Netherlands", "the United Kingdom",
    "Nairobi", "Buenos Aires", "Lisbon",
]
NER_PRODUCT = [  # (product name = entity, category noun = O)
    ("Zephyr X2", "headphones"), ("NovaTab 10", "tablet"), ("Pixelon S7", "phone"),
    ("Quanta Watch 3", "smartwatch"), ("Strato AX6", "router"), ("Echoline", "soundbar"),
    ("Auralis Mini", "speaker"), ("Volta 65W", "charger"), ("Lumen 4K", "webcam"),
    ("Orbit TKL", "keyboard"), ("Glide M2", "mouse"), ("Kairo Plug", "smart plug"),
    ("Helix H5", "headset"), ("Brisa Paper", "e-reader"), ("Terra 20000", "power bank"),
    ("Nimbus Buds", "earbuds"), ("Vanta T1", "drive"), ("Prism 27", "monitor"),
    ("Atlas Go", "camera"), ("Cove Bell 2", "doorbell"), ("Sonique Arc", "headphones"),
    ("Flux Dock", "docking station"), ("Aero Pad 11", "tablet"), ("Kinetic K3", "drone"),
    ("Mira Frame", "photo frame"), ("Pulse Band 2", "fitness tracker"),
    ("Stellar Beam", "projector"), ("Ridge Pro", "laptop"),
]

# Non-entity slots (tagged O): {NUM} {DAY} {DUR} {DATE} {ITEM}
NER_O_SLOTS = {
    "NUM": lambda r: str(r.randint(10000, 99999)),
    "DAY": lambda r: r.choice(WEEKDAYS),
    "DUR": lambda r: r.choice(["two weeks", "three days", "a week", "ten days", "a month",
                               "five days", "48 hours"]),
    "DATE": lambda r: str(r.randint(12, 20)),
    "ITEM": lambda r: r.choice(["charger", "cable", "remote", "manual", "power adapter",
                                "strap", "stand", "ear tips", "charging case", "wall mount",
                                "screws", "battery", "lens cap", "dongle"]),
}
# Slots: {PER} {ORG} {CARRIER}(->ORG) {PAY}(->ORG) {LOC} {PRODUCT} (name + optional category noun, O)
# {PNAME} (name only).  Plain text between slots is tagged O.
NER_TEMPLATES = [
    "Hi , this is {PER} and my {PRODUCT} arrived broken .",
    "{PER} here , I ordered a {PRODUCT} to {LOC} last week .",
    "My parcel from {CARRIER} has been stuck in {LOC} for five days .",
    "Does the {PRODUCT} work with accessories made by {ORG} ?",
    "{CARRIER} says the {PRODUCT} was delivered but I never got it .",
    "Thanks {PER} , the replacement {PRODUCT} works fine now .",
    "I still have not received my refund for order {NUM} .",
    "The package for order {NUM} never arrived and nobody answers the phone .",
    "Please ship my order to {LOC} instead .",
    "Is the {PNAME} compatible with the {PRODUCT} ?",
    "{PER} from {ORG} told me to contact you about the {PRODUCT} .",
    "We are a small company in {LOC} and want to buy ten {PNAME} units .",
    "Can {CARRIER} deliver to {LOC} on Saturday ?",
    "I bought the {PRODUCT} in your {LOC} store and paid with {PAY} .",
    "According to {ORG} , the new firmware for the {PNAME} fixes the battery bug .",
    "Order {NUM} for {PER} , shipping to {LOC} , {LOC} .",
    "My name is {PER} and I live in {LOC} .",
    "Who makes the {PNAME} , is it {ORG} ?",
    "Great service from {PER} , really helpful .",
    "The {PRODUCT} I picked up in {LOC} does not charge .",
    "Yesterday {PER} and I both ordered the {PRODUCT} .",
    "Could you forward this to {PER} in the returns team ?",
    "{DAY} morning the courier came but left nothing .",
    "Support ticket {NUM} is still open after {DUR} .",
    "Both the {ITEM} and the {ITEM} are missing from the box .",
    "Wi-Fi drops every hour on my {PRODUCT} .",
    "{ORG} replaced the battery in my {PRODUCT} but it still drains fast .",
    "I moved from {LOC} to {LOC} , please update my address .",
    "The {CARRIER} driver in {LOC} left the box outside in the rain .",
    "Hello {PER} , your {PRODUCT} has shipped with {CARRIER} and should reach {LOC} on Friday .",
    "Dear {PER} , we are sorry for the delay .",
    "Is there a warranty from {ORG} on the {PNAME} or only from your shop ?",
    "Why did {CARRIER} charge me customs fees for a parcel from {LOC} ?",
    "Please cancel my {PNAME} order .",
    "The {PRODUCT} is out of stock again .",
    "Best regards , {PER}",
    "Kind regards , {PER} ( {LOC} )",
    "Can I collect the {PRODUCT} in person in {LOC} ?",
    "This is the third time {CARRIER} has lost one of my parcels .",
    "{PER} on the chat said a refund would take five days .",
    "My {PRODUCT} and my {PRODUCT} keep interfering with each other .",
    "I read on the {ORG} forum that the {PNAME} overheats .",
    "Any chance of a student discount in {LOC} ?",
    "Does your shop accept {PAY} ?",
    "Thank you for the quick reply .",
    "The tracking page has not changed since {DAY} .",
    "Can someone call me back before {DAY} ?",
    "{LOC} customers seem to get their parcels faster than me .",
    "Returned the {PRODUCT} via {CARRIER} on Monday , tracking shows it in {LOC} .",
    "{PER} and {PER} from your team gave me different answers .",
    "Your website says the {PRODUCT} ships from {LOC} .",
    "Is {ORG} an authorised reseller of the {PNAME} ?",
    "Our office in {LOC} needs twenty {PNAME} units for new staff .",
    "Please send the invoice to {PER} at {ORG} .",
    "The {PNAME} from {ORG} is much cheaper on other sites .",
    "I paid with {PAY} but the order still shows as unpaid .",
    "Black Friday prices ended before order {NUM} went through .",
    "Your colleague {PER} promised me a discount code .",
    "Sending a {PRODUCT} to my sister in {LOC} , can you gift wrap it ?",
    "{PNAME} arrived without the USB-C cable .",
    "Is the {PNAME} the same as the one sold by {ORG} in {LOC} ?",
    "Customer {PER} reports that the {PRODUCT} reboots at random .",
    "Last year I bought a {PRODUCT} from you and it was great .",
    "Every parcel I get from {CARRIER} comes a day late .",
    "Can I return the {PRODUCT} at a {CARRIER} point in {LOC} ?",
    "The screen is cracked and the box was wet .",
    "Next time please use {CARRIER} , not {CARRIER} .",
    "The manual for the {PNAME} only mentions {ORG} accessories .",
    "Good afternoon , I am writing from {LOC} about order {NUM} .",
    "Please ask {PER} to call me about the {PRODUCT} .",
    "Has {ORG} announced a successor to the {PNAME} ?",
    "The delivery to {LOC} was quick , thank you .",
    "When will the {PNAME} be available in {LOC} ?",
    "None of the buttons on my {PRODUCT} work after the update .",
    "Signed for by {PER} at 14:05 .",
    "Our IT team at {ORG} wants a quote for fifty {PNAME} units .",
    "I am {PER} , a teacher in {LOC} , and the {PRODUCT} you sold me is faulty .",
    "Could {ORG} have changed the charger design for the {PNAME} ?",
    "Order {NUM} left {LOC} on Tuesday but {CARRIER} has no record of it .",
    "The {PNAME} , the {PNAME} and the {PNAME} all arrived in one box .",
    "Why is the {PNAME} cheaper in {LOC} than in {LOC} ?",
    "My daughter {PER} uses the {PRODUCT} for school .",
    "I was told by {PER} that {CARRIER} would collect the return .",
    "Please note that we no longer ship to {LOC} .",
    "A parcel for {PER} was left at the wrong house .",
    "Status update : your refund has been approved .",
    "Our warehouse in {LOC} is closed for the holidays .",
    "{PER} , {PER} and {PER} all reported the same fault with the {PNAME} .",
    "The logo on the box says {ORG} but the {PRODUCT} inside looks different .",
    "Apparently {ORG} bought {ORG} last year , so who handles the warranty now ?",
    "If {CARRIER} cannot deliver , please use {CARRIER} instead .",
    "Tell {PER} that the {PRODUCT} works again after the reset .",
    "Christmas orders must be placed by December {DATE} .",
    "Thanks again for your help , have a nice weekend .",
    "I travel between {LOC} and {LOC} a lot , does the {PNAME} support both plug types ?",
    "The {PRODUCT} I ordered on Friday was sent to {PER} by mistake .",
    "Is it safe to take the {PNAME} on a flight to {LOC} ?",
    "The English manual is missing from the box .",
    "Our customers in {LOC} love the {PNAME} .",
    "After the last update from {ORG} , my {PRODUCT} keeps rebooting .",
    "Why does the invoice show a billing address in {LOC} ?",
    "Our returns desk is open Monday to {DAY} .",
    "My parcel was supposed to arrive on {DAY} but it is still not here .",
    "The {ITEM} inside the box was broken .",
    "I have been waiting {DUR} for a reply to my email .",
    "Order {NUM} arrived with the wrong {ITEM} .",
    "Please confirm that the return for order {NUM} was received .",
    "Is the {ITEM} included or do I need to buy it separately ?",
    "The Quick Start Guide does not explain how to pair the {ITEM} .",
    "Why was order {NUM} split into two parcels ?",
    "Nobody has answered ticket {NUM} since {DAY} .",
    "The box for order {NUM} was wet and the {ITEM} is bent .",
    "Is there any way to speed up order {NUM} ?",
    "Hello , the {ITEM} stopped working after {DUR} .",
]



def split_pool(values: list, rng: random.Random) -> tuple[list, list]:
    v = list(values)
    rng.shuffle(v)
    k = max(1, round(len(v) * HOLDOUT))
    return v[k:], v[:k]


def build_ner(n_train: int, n_dev: int, rng: random.Random):
    pools = {}
    for name, values in [("PER", NER_PER), ("ORG", NER_ORG), ("CARRIER", NER_CARRIER),
                         ("PAY", NER_PAY),
                         ("LOC", NER_LOC), ("PRODUCT", NER_PRODUCT)]:
        tr, ho = split_pool(values, rng)
        pools[name] = {"train": tr, "dev": tr + ho + ho}  # dev leans toward unseen names

    def render(template: str, split: str, r: random.Random) -> list[tuple[str, str]]:
        used: set = set()
        out: list[tuple[str, str]] = []
        for tok in tokenize(template):
            m = re.fullmatch(r"\{(\w+)\}", tok)
            if not m:
                out.append((tok, "O"))
                continue
            slot = m.group(1)
            if slot in NER_O_SLOTS:
                while True:
                    v = NER_O_SLOTS[slot](r)
                    if v not in used:
                        used.add(v)
                        break
                out.extend((t, "O") for t in tokenize(v))
                continue
            key = "PRODUCT" if slot == "PNAME" else slot
            while True:
                value = r.choice(pools[key][split])
                if value not in used:
                    used.add(value)
                    break
            if key == "PRODUCT":
                name, category = value
                toks = tokenize(name)
                etype = "PRODUCT"
            else:
                toks = tokenize(value)
                category = None
                etype = "ORG" if key in ("CARRIER", "PAY") else key
            # a leading "the" in location names ("the Netherlands") stays outside the entity
            start = 0
            if toks[0].lower() == "the":
                out.append((toks[0], "O"))
                start = 1
            for i, t in enumerate(toks[start:]):
                out.append((t, ("B-" if i == 0 else "I-") + etype))
            if slot == "PRODUCT" and r.random() < 0.5:
                for t in tokenize(category):
                    out.append((t, "O"))
        # avoid "the the Netherlands"
        cleaned: list[tuple[str, str]] = []
        for tok, tag in out:
            if cleaned and tok.lower() == "the" and cleaned[-1][0].lower() == "the" and tag == "O":
                continue
            cleaned.append((tok, tag))
        # "the Netherlands customers ..." -> "The Netherlands customers ..."
        if cleaned[0][1] == "O" and cleaned[0][0].islower():
            cleaned[0] = (cleaned[0][0].capitalize(), "O")
        # fix the article before a vowel-initial name ("a Auralis" -> "an Auralis")
        for i in range(len(cleaned) - 1):
            nxt, nxt_tag = cleaned[i + 1]
            if cleaned[i][0] == "a" and nxt_tag.startswith("B-") and nxt[:1] in "AEIO":
                cleaned[i] = ("an", "O")
        return cleaned

    tr_t, ho_t = split_templates(NER_TEMPLATES, rng)
    taken: set[str] = set()

    def draw(templates: list[str], n: int, split: str) -> list[list[tuple[str, str]]]:
        sents = []
        order = list(templates)
        rng.shuffle(order)
        i = tries = 0
        while len(sents) < n:
            tries += 1
            if tries > 200 * n:
                raise RuntimeError("could not generate enough unique NER sentences")
            sent = render(order[i % len(order)], split, rng)
            i += 1
            key = " ".join(t for t, _ in sent)
            if key in taken:
                continue
            taken.add(key)
            sents.append(sent)
        return sents

    train = draw(tr_t, n_train, "train")
    n_ho = round(n_dev * DEV_FROM_HELDOUT)
    dev = draw(ho_t, n_ho, "dev") + draw(tr_t, n_dev - n_ho, "dev")
    rng.shuffle(train)
    rng.shuffle(dev)
    return train, dev



# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_conll(path: Path, sents: list[list[tuple[str, str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join("\n".join(f"{tok} {tag}" for tok, tag in s) for s in sents) + "\n")


def main() -> None:
    rng = random.Random(SEED)

    inbox_train, inbox_dev = build_inbox(rng)
    write_jsonl(OUT / "inbox" / "train.jsonl", inbox_train)
    write_jsonl(OUT / "inbox" / "dev.jsonl", inbox_dev)

    ner_train, ner_dev = build_ner(NER_TRAIN, NER_DEV, rng)
    shown = {norm(t) for t in SHOWN}
    assert not any(norm(" ".join(t for t, _ in s)) in shown for s in ner_train + ner_dev)
    write_conll(OUT / "ner" / "train.conll", ner_train)
    write_conll(OUT / "ner" / "dev.conll", ner_dev)

    def count(rows: list[dict], key: str) -> str:
        values = sorted({r[key] for r in rows})
        return ", ".join(f"{v} {sum(r[key] == v for r in rows)}" for v in values)

    no_entities = sum(all(t == "O" for t in r["tags"]) for r in inbox_train)
    print(f"inbox: {len(inbox_train)} train / {len(inbox_dev)} dev messages, each with intent, sentiment and entities")
    print(f"  intent (train):    {count(inbox_train, 'intent')}")
    print(f"  sentiment (train): {count(inbox_train, 'sentiment')}")
    print(f"  without entities (train): {no_entities}")
    print(f"ner:   {len(ner_train)} train / {len(ner_dev)} dev extra sentences (CoNLL)")
    print(f"written under {OUT}")


if __name__ == "__main__":
    main()
