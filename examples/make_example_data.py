#!/usr/bin/env python3
"""Generate the small synthetic example datasets that ship with polyhead.

All text is produced from hand-written templates and slot lists in this file
(written for polyhead, not taken from any public dataset).  The theme is the
support / product inbox of a fictional online electronics shop, "VoltCart", so
the three tasks label the same kind of texts:

* intent     -> examples/data/intent/{train,dev}.jsonl     {"text", "label"}
* sentiment  -> examples/data/sentiment/{train,dev}.jsonl  {"text", "label"}
* ner        -> examples/data/ner/{train,dev}.conll        "token TAG" lines, IOB2

Design notes
------------
* Deterministic: a single ``random.Random(SEED)`` drives everything.
* Dev is deliberately not a copy of train with new slot values: for every label
  roughly a quarter of the templates (and for NER a quarter of the entity names)
  are held out and only appear in dev, so a model has to generalise a little.
* Train and dev never share an identical text (checked before writing).

Standard library only.  Run from anywhere:

    python examples/make_example_data.py
"""

from __future__ import annotations

import json
import re
import random
from pathlib import Path

SEED = 20240611
OUT = Path(__file__).resolve().parent / "data"

# fraction of templates (and NER entity names) that only appear in dev
HOLDOUT = 0.25
# share of dev examples drawn from held-out templates (rest: train templates, new fills)
DEV_FROM_HELDOUT = 0.6

# --------------------------------------------------------------------------
# shared slot values (intent + sentiment)
# --------------------------------------------------------------------------

# singular, powered, connected devices, so that every template reads naturally
PRODUCTS = [
    "Zephyr X2 headset", "NovaTab 10 tablet", "Pixelon S7 phone", "Quanta Watch 3",
    "Strato AX6 router", "Echoline soundbar", "Auralis Mini speaker", "Volta V8 smart display",
    "Lumen 4K webcam", "Orbit TKL keyboard", "Glide M2 mouse", "Kairo smart plug",
    "Helix H5 headset", "Brisa Paper e-reader", "Terra X fitness tracker", "Nimbus S projector",
    "Vanta T1 drone", "Prism 27 monitor", "Atlas Go action camera", "Cove Bell 2 doorbell",
    "mini PC", "baby monitor", "gaming mouse", "smartwatch", "bluetooth speaker",
    "smart speaker", "streaming stick", "dash cam", "robot vacuum", "gaming console",
]
CITIES = [
    "Berlin", "Lyon", "Manchester", "Rotterdam", "Porto", "Krakow", "Dublin", "Toronto",
    "Osaka", "Cape Town", "Glasgow", "Valencia", "Gothenburg", "Brno", "Leeds", "Antwerp",
    "Milan", "Vancouver", "Melbourne", "Austin",
]
COUNTRIES = [
    "Germany", "France", "Spain", "Ireland", "Poland", "Canada", "Norway", "Switzerland",
    "Australia", "Japan", "Portugal", "Italy", "the Netherlands", "Sweden", "Austria",
    "the United States", "Denmark", "Belgium",
]
CARRIERS = [
    "DHL", "UPS", "FedEx", "DPD", "Royal Mail", "PostNL", "GLS", "Hermes", "La Poste",
    "Canada Post", "the courier", "the post office",
]
AGENTS = [
    "Marta", "Daniel", "Priya", "Tom", "Aiko", "Samuel", "Lea", "Jonas", "Fatima", "Oliver",
    "Noor", "Lucas", "Hannah", "Mateo", "Ines",
]
DURATIONS = [
    "three days", "a week", "two weeks", "ten days", "48 hours", "five days", "over a month",
    "nearly three weeks", "four days", "a fortnight",
]
USE_TIMES = [  # how long something has been used
    "two days", "a week", "a month", "three months", "six months", "a year", "two weeks",
    "ten days", "a few weeks", "four months",
]
FAST = ["two days", "three days", "48 hours", "under a week", "four days"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ASPECTS = [
    "battery life", "sound quality", "screen", "build quality", "setup process",
    "noise cancelling", "camera", "charging speed", "companion app", "microphone",
    "keyboard feel", "range", "picture quality", "fit", "connection stability",
]
ERROR_CODES = ["E12", "E45", "0x1F", "E301", "ERR-7", "E08", "C2", "E99"]


def order_number(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"#{rng.randint(10000, 99999)}"
    return f"VC-{rng.randint(100000, 999999)}"


SIGNOFFS = ["Anna", "Mark", "J. Rivera", "Sven", "Beatriz", "Kemal", "Louise", "Ade", "Mia",
            "Pavel", "Rachel", "Tariq"]


def fill(template: str, rng: random.Random) -> str:
    """Replace ``{slot}`` markers in an intent/sentiment template.

    A slot that occurs twice gets the same value both times (so an opener and the
    body talk about the same product); ``{product2}`` is always a different product.
    """
    ctx: dict[str, str] = {}

    def value(slot: str) -> str:
        if slot == "product" or slot == "product2":
            other = ctx.get("product2" if slot == "product" else "product")
            return rng.choice([p for p in PRODUCTS if p != other])
        if slot == "order":
            return order_number(rng)
        if slot in ("carrier", "Carrier"):
            c = rng.choice(CARRIERS)
            return c[0].upper() + c[1:] if slot == "Carrier" else c
        if slot in ("aspect", "Aspect"):
            a = rng.choice(ASPECTS)
            return a[0].upper() + a[1:] if slot == "Aspect" else a
        lists = {"city": CITIES, "country": COUNTRIES, "agent": AGENTS, "days": DURATIONS,
                 "time": USE_TIMES, "fast": FAST, "day": WEEKDAYS, "code": ERROR_CODES, "signoff": SIGNOFFS}
        return rng.choice(lists[slot])

    def repl(m: re.Match) -> str:
        slot = m.group(1)
        if slot not in ctx:
            ctx[slot] = value(slot)
        return ctx[slot]

    return re.sub(r"\{(\w+)\}", repl, template)


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
# 1. intent
# --------------------------------------------------------------------------

INTENT_TEMPLATES: dict[str, list[str]] = {
    "order_status": [
        "Where is my order {order}?",
        "Can you tell me the status of order {order}?",
        "I placed an order for the {product} {days} ago and it still says processing.",
        "Has my order {order} been dispatched yet?",
        "My account shows order {order} as pending, is that normal?",
        "When will my {product} order actually leave your warehouse?",
        "I ordered the {product} on {day} and have heard nothing since.",
        "Any update on order {order}?",
        "The order page has said 'preparing' for {days}, what is going on?",
        "Did my order go through? I was charged but I don't see an order number.",
        "Just checking in on order {order}, it was supposed to be packed by now.",
        "How long does an order normally stay in 'processing' before it ships?",
        "My order {order} was split in two and I can only see one part, where is the rest?",
        "order {order} status pls",
        "I need to know if order {order} will be ready before {day}.",
        "It has been {days} since I bought the {product} and the status has not changed at all.",
        "Is there a backlog on the {product}? My order has been stuck for {days}.",
        "I got an email saying my order was put on hold, why?",
        "What does 'awaiting fulfilment' mean on order {order}?",
        "Was order {order} cancelled? It disappeared from my order history.",
        "I'd like an update on the {product} I ordered last {day}.",
        "Could you confirm that you actually received my order for the {product} and the {product2}?",
        "The confirmation email for order {order} never came, is the order still active?",
        "Why does my order for the {product} say 'payment under review'?",
        "I ordered the {product} and the {product2} together, why is only one marked as sent?",
        "Is my pre-order of the {product} still going to be fulfilled on release day?",
        "You said order {order} would be processed within 24 hours, that was {days} ago.",
        "Quick question: has anyone picked my order yet? It's {order}.",
        "The order status went back from 'shipped' to 'processing', what does that mean?",
        "Hello, I'm chasing order {order}, nobody has replied to my last two emails.",
        "My order for the {product} is showing as 'partially allocated', when will the rest be allocated?",
        "Can you check if order {order} is stuck because of my payment?",
        # harder: mention other topics, but the ask is the order's progress
        "I logged into my account and order {order} still says processing, has it shipped?",
        "Before I ask for a refund, can you just tell me whether order {order} is being prepared?",
        "Is the {product} I ordered actually in your warehouse or is it on backorder?",
        "I paid for express delivery but my order hasn't even been packed after {days}.",
        "The app says my {product} order is 'ready to ship', when does that change?",
        "The site crashed at checkout and I'm not sure my order went through, can you check?",
        "Has order {order} been handed over to {carrier} yet or is it still with you?",
        "My order number is {order} and the status page is blank, what stage is it at?",
    ],
    "shipping": [
        "Do you ship to {country}?",
        "How much does express delivery to {city} cost?",
        "The tracking from {carrier} says delivered but nothing arrived.",
        "{Carrier} tracking for my parcel hasn't updated in {days}.",
        "Can I change the delivery address for order {order} to {city}?",
        "Do you offer next-day delivery?",
        "Is shipping free on orders over fifty euros?",
        "{Carrier} left my {product} with a neighbour I've never met.",
        "Which carrier do you use for deliveries to {country}?",
        "My parcel is stuck at customs in {country}, what should I do?",
        "Can I collect my order from a parcel locker instead of home delivery?",
        "The box arrived crushed and the driver wouldn't wait while I checked it.",
        "Will I have to pay import duties if you ship the {product} to {country}?",
        "How long does standard delivery take to {city}?",
        "The delivery is booked for {day} but I'm away, can {carrier} hold it?",
        "I missed the delivery, how do I rebook it with {carrier}?",
        "Why was I charged for postage when the site said delivery was free?",
        "Can you send the {product} in plain packaging? It's a gift.",
        "Tracking has said 'out for delivery' since yesterday morning.",
        "Do you deliver on weekends in {city}?",
        "The parcel went to my old address in {city}, can it be redirected?",
        "Is it possible to combine my two orders into one delivery?",
        "What is the cut-off time for same-day delivery in {city}?",
        "The tracking link you sent me for order {order} just gives an error page.",
        "Can I get the {product} delivered to my office instead of my home?",
        "My parcel was returned to sender because the address label was smudged.",
        "Do you ship batteries like the {product} by air to {country}?",
        "The courier marked my parcel as 'recipient not available' but I was home all day.",
        "Can the driver leave the parcel in my safe place without a signature?",
        "Is there a cheaper shipping option to {country} than express?",
        "My parcel has been at the {city} depot for {days}.",
        "Can you ship to a PO box in {country}?",
        # harder
        "Order {order} shows as shipped but the {carrier} tracking number isn't recognised.",
        "Your site says my order is complete, but the parcel never reached my door.",
        "I'd rather pick the parcel up myself from the depot in {city}, is that possible?",
        "Can I add a note so {carrier} rings the bell instead of leaving a card?",
        "{Carrier} wants me to pay a handling fee before they deliver, is that right?",
        "The courier's app says my parcel is at a different address in {city}.",
        "I'm moving house next week, can my order still be delivered to the new address?",
        "The {product} was sent in a bag with no padding, please use a box next time.",
    ],
    "refund": [
        "I want to return the {product} and get my money back.",
        "When will I receive the refund for order {order}?",
        "I was charged twice for the {product}, please refund one of the payments.",
        "How do I start a return for a faulty {product}?",
        "I sent the {product} back {days} ago and still no refund.",
        "Can I cancel order {order} and get a full refund?",
        "The refund went to a card I no longer have, what happens now?",
        "Your returns page says thirty days, is that from delivery or from purchase?",
        "The {product} dropped in price a week after I bought it, can you refund the difference?",
        "Do I have to pay for the return postage on the {product}?",
        "You only refunded part of what I paid for order {order}.",
        "I never agreed to this extended warranty charge, please reverse it.",
        "The {product} arrived damaged and I want my money back, not a replacement.",
        "My bank has shown the refund as pending for {days}.",
        "Can I return an opened {product} if it's unused?",
        "Please refund the accessories that were missing from order {order}.",
        "Store credit is no use to me, I asked for the money to go back to my card.",
        "How long do refunds take to show up on PayPal?",
        "I dropped the {product} off at a return point in {city}, has it reached you yet?",
        "Is the restocking fee refundable if the item was faulty?",
        "Your return label expired before I could use it, can I still send the {product} back?",
        "I cancelled within the hour but you still took the payment for the {product}.",
        "The {product} isn't what I expected, I'd like to send it back for a refund.",
        "I returned the wrong colour {product} and was refunded less than I paid.",
        "Can I get a refund for the delivery fee since the parcel came {days} late?",
        "Your agent {agent} promised a refund {days} ago and nothing has arrived.",
        "What's the status of the return I sent for order {order}?",
        "I'd like to return the {product}, it was a gift and we already have one.",
        "Please cancel the {product} from my order and refund it, I only need the {product2}.",
        "Why did my refund come through in a different currency?",
        "The return was accepted but the money has not reached my account.",
        "Can I swap the {product} for the {product2} and get the price difference back?",
        # harder
        "The {product} keeps crashing and I've had enough, I want my money back.",
        "The parcel never arrived, so please refund me instead of sending another one.",
        "I can't get into my account to request a return, can you start it for me?",
        "Order {order} was cancelled by you, so where is my money?",
        "Your site said the {product} was compatible with my laptop, it isn't, so I'm sending it back.",
        "Tracking shows you received my returned {product} {days} ago, so where is the refund?",
        "I've already had two replacement {product} units, this time I want a refund.",
        "The parcel was marked as delivered but the box was empty, I'd like a refund.",
    ],
    "technical_issue": [
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
        "The touch controls on the {product} react when I haven't touched anything.",
        "The {product} restarts by itself several times a day.",
        "People on video calls can't hear me through the {product}.",
        "The battery on my {product} goes from full to empty in two hours.",
        "How do I factory reset the {product}? It has frozen completely.",
        "My laptop doesn't detect the {product} when I plug it in.",
        "Sound is out of sync with the picture when I use the {product}.",
        "The charger that came with the {product} clicks and doesn't charge anything.",
        "Since yesterday the {product} says 'device not supported' when I connect it.",
        "error {code} on the {product} display, what does it mean?",
        "The {product} stopped working {days} after I started using it, it just shows a red light.",
        "The {product} won't connect to my 5 GHz network.",
        "My {product} keeps losing its settings every time I unplug it.",
        "Half of the keys on the {product} register twice.",
        "The left earbud won't charge in the case, the right one is fine.",
        "The {product} makes a high-pitched whine when it's idle.",
        "After resetting my router the {product} can't find any network.",
        "The {product} shows code {code} and then shuts down.",
        "My {product} was working fine until today and now the display stays black.",
        "The app keeps saying my {product} is offline even though it's right next to the router.",
        "The volume on the {product} jumps to maximum on its own.",
        "Video from the {product} is blurry no matter what settings I use.",
        # harder
        "I just received order {order} and the {product} won't power on out of the box.",
        "Before I return the {product}, is there a fix for it not charging past 80 percent?",
        "The {product} app won't let me log in, it says my device serial is invalid.",
        "The {product} you shipped me last week now freezes whenever I open the camera.",
        "Why does the {product} show the wrong time even after a reset?",
        "The {product} says an update is available but the update button does nothing.",
        "Since the {product} arrived it has never once connected to my Wi-Fi.",
        "The step tracking on my {product} doesn't record anything anymore.",
    ],
    "account": [
        "I can't log in, the password reset email never arrives.",
        "How do I change the email address on my account?",
        "Please delete my account and all of my personal data.",
        "Someone placed an order from my account that I don't recognise.",
        "My account got locked after too many login attempts.",
        "How do I stop all the marketing emails?",
        "I want to update the billing address saved in my profile.",
        "Can I merge two accounts I created by mistake?",
        "The two-factor code isn't being sent to my phone.",
        "How do I remove a saved card from my account?",
        "I changed my phone number and now I can't verify my login.",
        "My loyalty points have vanished from my account.",
        "Where can I download invoices for my past orders in my account?",
        "How do I set up a business account for my company?",
        "The site logs me out every few minutes and I have to sign in again.",
        "My name is spelled wrong on my account, can you fix it?",
        "Can I add my partner as a second user on my account?",
        "I never signed up but I'm getting emails for an account in my name.",
        "Where do I request a copy of the personal data you hold on me?",
        "My student discount verification isn't showing on my profile.",
        "The password reset link says it has expired every time I click it.",
        "I signed up with Google and now I can't set a normal password.",
        "Can I change my username without losing my order history?",
        "I got a 'suspicious login from {city}' alert but it wasn't me.",
        "How do I unsubscribe from the newsletter without closing my account?",
        "My saved addresses disappeared from my profile after I logged in.",
        "Can you reactivate the account I closed last year?",
        "I'm not getting the verification email to activate my new account.",
        "The wishlist in my account is empty even though I saved items yesterday.",
        "Please change the email on my account, I no longer have access to the old one.",
        "Why does my account say my membership expired when I paid for a year?",
        "How do I turn on two-step verification for my login?",
        # harder
        "I can't see any of my orders when I log in, did my account get wiped?",
        "The site won't accept my new password even though it meets all the rules.",
        "Can you change the email on my account so shipping updates go to my work address?",
        "How do I change the default delivery address saved in my profile?",
        "I placed an order as a guest, can I attach it to my account now?",
        "Someone changed the password on my account and ordered a {product}.",
        "My account says I have no saved payment methods but I added a card yesterday.",
        "Why does the site keep asking me to verify my email before I can check out?",
    ],
    "product_question": [
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
        "Does the {product} have active noise cancelling?",
        "Is a newer version of the {product} coming out this year?",
        "Which is better for gaming, the {product} or the {product2}?",
        "Can I use the {product} while it's charging?",
        "Does the {product} need an app to work?",
        "Is the {product} suitable for a ten-year-old?",
        "Do you sell replacement parts for the {product}?",
        "What size memory card does the {product} take?",
        "Can the {product} be mounted on a wall?",
        "Will the {product} work with the {product2} I already have?",
        "Does the {product} work in {country} with the local voltage?",
        "Is the {product} refurbished or brand new?",
        "What is included in the box with the {product}?",
        "Does the {product} support two devices at once?",
        "Is the {product} a good choice for video calls?",
        "What's the maximum range of the {product}?",
        "Can the {product} be used outdoors in the rain?",
        "Does the {product} have a headphone jack?",
        "Does the {product} still get software updates?",
        "Is there a bundle deal if I buy the {product} with the {product2}?",
        # harder
        "Before I order, does the {product} ship with a European plug or a UK plug?",
        "If I buy the {product} today, will it have the latest firmware?",
        "Is the {product} easy to set up for someone who isn't technical?",
        "Does the {product} have any known Bluetooth issues with Android phones?",
        "Would the {product} work for my dad? He's not great with apps.",
        "Does the {product} keep working if the Wi-Fi goes down?",
        "How does the {product} compare with the {product2} for battery life?",
        "Is the warranty on the {product} still valid if I order it to {country}?",
    ],
}

# neutral openers/closers shared by all intent labels (style noise, no label signal)
INTENT_OPENERS = ["", "", "", "", "Hi, ", "Hello, ", "Hi there, ", "Good morning, ", "Hey, ",
                  "Quick question. ", "Sorry to bother you, "]
INTENT_CLOSERS = ["", "", "", "", " Thanks.", " Thank you!", " Please help.", " Cheers.",
                  " Thanks in advance.", " Regards, {signoff}."]


def style_intent(template: str, rng: random.Random) -> str:
    text = fill(join_styled(rng.choice(INTENT_OPENERS), template, rng.choice(INTENT_CLOSERS)), rng)
    if rng.random() < 0.08:  # sloppy inbox style
        text = text.lower().rstrip(".!")
    return text


# --------------------------------------------------------------------------
# 2. sentiment
# --------------------------------------------------------------------------

SENTIMENT_TEMPLATES: dict[str, list[str]] = {
    "positive": [
        "The {product} arrived early and works perfectly.",
        "Really impressed with the {aspect} on the {product}.",
        "{agent} from support sorted out my problem in minutes, thank you!",
        "I was sceptical at first, but the {product} has been excellent for {time} now.",
        "Not cheap, but worth every penny.",
        "Delivery was a day late, but the {product} itself is brilliant and I'd buy it again.",
        "Setup took two minutes and the {aspect} is better than I expected.",
        "The {product} is the best purchase I've made this year.",
        "Thanks for the quick refund, the whole process was painless.",
        "My old one broke constantly; this {product} hasn't given me a single problem.",
        "Can't fault it. Solid {aspect}, fair price, fast shipping.",
        "I struggled with pairing at first, but the guide on your site fixed it and now it's flawless.",
        "Five stars, the {product} does exactly what it says.",
        "The {aspect} is not bad at all, actually much better than on my previous one.",
        "Love it. The whole family uses the {product} every day.",
        "Packaging was a bit excessive, but the {product} is fantastic.",
        "Your team replaced my faulty unit without any fuss, really appreciated.",
        "I expected trouble with customs but it reached {city} in {fast} with no extra fees.",
        "Quiet, fast and easy to use, I'm very happy with the {product}.",
        "Would recommend the {product} to anyone who cares about {aspect}.",
        "After {time} of daily use the {product} still feels brand new.",
        "Great communication from start to finish, I always knew where my parcel was.",
        "I was about to return it, but the firmware update fixed everything, so I'm keeping it.",
        "Lovely {aspect}, and it's comfortable to wear for hours.",
        "Smaller than I thought, which turns out to be a plus: it fits in my bag easily.",
        "Top support, {agent} stayed on the chat until the problem was solved.",
        "Nothing to complain about, works as advertised.",
        "Bought a second {product} for my partner because the first one is so good.",
        "The {aspect} could be a little better, but overall I'm really pleased.",
        "I didn't expect much for the price, and I'm genuinely surprised how good it is.",
        "{Carrier} was quick and the {product} was packed really carefully.",
        "No more dropouts since I switched to the {product}, it just works.",
        "Honestly the easiest return I've ever done, and the refund came in {fast}.",
        "My first order with you and definitely not the last.",
        "{Aspect} is superb and the battery easily lasts all day.",
        "I had a bad experience with another shop, so this was a pleasant change.",
        "It took {days} to arrive, which was fine, and the {product} is excellent.",
        "Clear instructions, sturdy build, and it sounds great. Happy customer.",
    ],
    "negative": [
        "The {product} stopped charging after {time}.",
        "Very disappointed with the {aspect} on the {product}.",
        "Support promised a call back three times and nobody ever called.",
        "Looks great, but the {aspect} is terrible and it overheats.",
        "I've been waiting {days} for my refund and I keep getting copy-paste replies.",
        "Not worth the money, it feels cheap and flimsy.",
        "Fast delivery, shame the {product} was dead on arrival.",
        "The {aspect} is not good at all, far worse than the reviews suggested.",
        "Never again. Wrong item sent twice and not even an apology.",
        "It works, but only if you restart it every hour, which is ridiculous.",
        "The box had been opened and the {product} was scratched all over.",
        "Your chat bot goes round in circles and I can't reach a human.",
        "{agent} was friendly, but nothing was actually fixed and the {product} still crashes.",
        "I'd give zero stars if I could.",
        "The battery died after {time} and the replacement has the same fault.",
        "Great price, awful {aspect}.",
        "{Carrier} left it out in the rain and the {product} is ruined.",
        "The app is a mess and the {product} is useless without it.",
        "Sending it back: uncomfortable, heavy, and the {aspect} is mediocre.",
        "I loved my last one, which makes this {product} a real letdown.",
        "Paid extra for express shipping and it still took {days}.",
        "Every update makes the {product} slower.",
        "The instructions are useless and nobody answers the phone.",
        "Three weeks, two tickets, zero answers.",
        "Sounds fine for a day, then the left side keeps cutting out.",
        "Thanks for nothing, my refund was refused without any explanation.",
        "Cheap plastic, creaky hinges, and the {aspect} is below average.",
        "I really wanted to like the {product}, but it disconnects every few minutes.",
        "The {aspect} is fine, but it broke after {time} and the warranty claim was rejected.",
        "Still waiting for someone to explain why my parcel went to {city}.",
        "Would not recommend the {product}, save your money.",
        "The {product} is nice enough, if it actually turned on more than half the time.",
        "I was promised a replacement within {fast}; it has now been {days}.",
        "Your website said in stock, then you cancelled my order {order} a week later.",
        "The {aspect} is a joke for this price.",
        "Good idea, poor execution: the {product} loses connection constantly.",
        "After {time} the {product} started making a horrible grinding noise.",
        "I have asked {agent} for an update four times and I still have nothing.",
    ],
}

SENTIMENT_OPENERS = ["", "", "", "", "", "Bought this last month. ", "Ordered it as a gift. ",
                     "Second order from this shop. ", "Order {order}. ", "Update: ",
                     "Short review. ", "Review after {time}: "]
SENTIMENT_CLOSERS = ["", "", "", "", "", " Order {order}.", " That's all.", " Just so you know.",
                     " Bought it in {city}.", " Used it mainly for work."]


def style_sentiment(template: str, rng: random.Random) -> str:
    return fill(join_styled(rng.choice(SENTIMENT_OPENERS), template,
                            rng.choice(SENTIMENT_CLOSERS)), rng)


# --------------------------------------------------------------------------
# generic classification split
# --------------------------------------------------------------------------

def split_templates(templates: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    t = list(templates)
    rng.shuffle(t)
    k = max(1, round(len(t) * HOLDOUT))
    return t[k:], t[:k]  # train templates, held-out (dev-only) templates


def sample_unique(pool: list[str], n: int, make, rng: random.Random, taken: set[str]) -> list[str]:
    """Draw ``n`` new texts from ``pool`` templates, cycling templates for even coverage."""
    out: list[str] = []
    order = list(pool)
    rng.shuffle(order)
    i = tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n:
            raise RuntimeError("could not generate enough unique examples")
        text = make(order[i % len(order)], rng)
        i += 1
        if text in taken:
            continue
        taken.add(text)
        out.append(text)
    return out


def build_classification(templates: dict[str, list[str]], n_train: int, n_dev: int,
                         style, rng: random.Random) -> tuple[list[dict], list[dict]]:
    taken: set[str] = set()
    train: list[dict] = []
    dev: list[dict] = []

    for label, tmpl in templates.items():
        tr_t, ho_t = split_templates(tmpl, rng)
        for text in sample_unique(tr_t, n_train, style, rng, taken):
            train.append({"text": text, "label": label})
        n_ho = round(n_dev * DEV_FROM_HELDOUT)
        for text in sample_unique(ho_t, n_ho, style, rng, taken):
            dev.append({"text": text, "label": label})
        for text in sample_unique(tr_t, n_dev - n_ho, style, rng, taken):
            dev.append({"text": text, "label": label})
    rng.shuffle(train)
    rng.shuffle(dev)
    return train, dev


# --------------------------------------------------------------------------
# 3. NER
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

TOKEN_RE = re.compile(r"\{\w+\}|[\w]+(?:[-'.:][\w]+)*|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


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
            f.write(json.dumps({"text": row["text"], "label": row["label"]}, ensure_ascii=False) + "\n")


def write_conll(path: Path, sents: list[list[tuple[str, str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join("\n".join(f"{tok} {tag}" for tok, tag in s) for s in sents) + "\n")


def main() -> None:
    rng = random.Random(SEED)

    intent_train, intent_dev = build_classification(INTENT_TEMPLATES, 60, 15, style_intent, rng)
    write_jsonl(OUT / "intent" / "train.jsonl", intent_train)
    write_jsonl(OUT / "intent" / "dev.jsonl", intent_dev)

    sent_train, sent_dev = build_classification(SENTIMENT_TEMPLATES, 150, 40, style_sentiment, rng)
    write_jsonl(OUT / "sentiment" / "train.jsonl", sent_train)
    write_jsonl(OUT / "sentiment" / "dev.jsonl", sent_dev)

    ner_train, ner_dev = build_ner(300, 80, rng)
    write_conll(OUT / "ner" / "train.conll", ner_train)
    write_conll(OUT / "ner" / "dev.conll", ner_dev)

    print(f"intent:    {len(intent_train)} train / {len(intent_dev)} dev")
    print(f"sentiment: {len(sent_train)} train / {len(sent_dev)} dev")
    print(f"ner:       {len(ner_train)} train / {len(ner_dev)} dev sentences")
    print(f"written under {OUT}")


if __name__ == "__main__":
    main()
