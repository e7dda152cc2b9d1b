"""The offline chat: a deterministic, child-safe reply engine behind :class:`ChatModel`.

Not a language model. It matches the child's last message (normalised as the safety layer
does: :func:`hub.safety.local.normalise`) against a short list of intents and answers from
templates that use the child's first name: greetings, how are you, the toy's name, the child's
name, whether the toy is alive (honestly: it is a toy that can talk), a small table of facts
(rainbow colours, spider legs, bees, the blue sky, counting, days of the week, animal sounds),
short stories, jokes and rhymes (chosen by a stable hash of the message, so one message always
gets the same reply), thanks, feelings (kind words and a nudge towards a grown-up) and goodbye
(no guilt). Anything else is "a great question to ask a grown-up together".

Replies are in English whatever the child's language (the canned lines in
:mod:`hub.conversation.lines` are translated; these are not yet). Every template passes
:meth:`hub.safety.local.SafetyLayer.check_output` on its own (the unit tests check it).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Final

from hub.conversation.prompt import DEFAULT_NAME, name_from_prompt, sanitise_name
from hub.safety.local import collapse_repeats, normalise
from hub.voice.providers import ChatMessage

FALLBACK: Final = "That's a great question! Let's ask a grown-up together."

STORIES: Final = (
    "Once upon a time, a little hedgehog called Pip found a shiny red apple. Pip shared it "
    "with a hungry rabbit, and they became the best of friends. The end!",
    "Once upon a time, a tiny cloud wanted to help the flowers grow. It rained a gentle "
    "rain, and the whole garden bloomed in every colour. The flowers waved thank you. The end!",
    "Once upon a time, a brave little duck learned to swim. First she paddled slowly, then "
    "faster and faster, until she zoomed around the pond, quacking with joy. The end!",
    "Once upon a time, a sleepy bear counted the stars. One, two, three, and by the time he "
    "got to ten he was snoring softly under the moon. Goodnight, sleepy bear. The end!",
)
JOKES: Final = (
    "Why did the teddy bear say no to dessert? Because it was already stuffed!",
    "What do you call a sleeping dinosaur? A dino-snore!",
    "Why do fish live in salt water? Because pepper makes them sneeze!",
    "What do you call a bear with no teeth? A gummy bear!",
    "Why did the cookie go to the doctor? Because it felt crummy!",
)
SONGS: Final = (
    "Twinkle, twinkle, little star, how I wonder what you are. Up above the world so high, "
    "like a diamond in the sky.",
    "Row, row, row your boat, gently down the stream. Merrily, merrily, merrily, merrily, "
    "life is but a dream.",
    "Incy Wincy spider climbed up the water spout. Down came the rain and washed the spider "
    "out. Out came the sunshine and dried up all the rain, and Incy Wincy spider climbed up "
    "the spout again.",
)
ANIMAL_SOUNDS: Final = {
    "cow": "moo",
    "dog": "woof",
    "cat": "meow",
    "duck": "quack",
    "sheep": "baa",
    "pig": "oink",
    "horse": "neigh",
    "lion": "roar",
    "owl": "hoo hoo",
    "frog": "ribbit",
    "chicken": "cluck",
    "mouse": "squeak",
    "bee": "buzz",
    "snake": "hiss",
    "donkey": "hee-haw",
}
_ANIMALS_BY_FORM: Final = {collapse_repeats(animal): animal for animal in ANIMAL_SOUNDS}
FACTS: Final = {
    "rainbow": "A rainbow has seven colours: red, orange, yellow, green, blue, indigo and violet!",
    "spider": "A spider has eight legs. That's two more than a bug like a beetle, which has six!",
    "bees": "Bees make honey from the sweet nectar inside flowers. Buzz buzz!",
    "sky": "The sky looks blue because sunlight is made of lots of colours, and the air "
    "bounces the blue light all around the sky!",
    "count": "One, two, three, four, five, six, seven, eight, nine, ten! Can you count with me?",
    "days": "The days of the week are Monday, Tuesday, Wednesday, Thursday, Friday, Saturday "
    "and Sunday!",
}


def _pattern(*sources: str) -> re.Pattern[str]:
    body = "|".join(f"(?:{collapse_repeats(source)})" for source in sources)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


_ANIMAL_QUESTION = _pattern(
    r"(?:what|which) (?:sound|noise) (?:does|do) (?:a |an |the )?(?P<animal>[a-z]+)",
    r"what (?:does|do) (?:a |an |the )?(?P<animal2>[a-z]+) (?:say|go)",
    r"how (?:does|do) (?:a |an |the )?(?P<animal3>[a-z]+) (?:go|sound)",
)
# Intent name -> pattern, tried in this order (the first that matches wins).
_INTENTS: Final = (
    (
        "goodbye",
        _pattern(
            r"bye|bye bye|goodbye|good bye|see you|see ya|good night|goodnight"
            r"|night night|i have to go|i need to go|i gotta go|gotta go|i m off"
            r"|im off"
        ),
    ),
    (
        "feeling_sad",
        _pattern(
            r"(?:i m|im|i am|i feel|feeling|i feel so|im so|i m so) (?:so |"
            r"really |very |a bit |a little )?(?:sad|unhappy|lonely|upset"
            r"|down|grumpy)"
        ),
    ),
    (
        "feeling_scared",
        _pattern(
            r"(?:i m|im|i am|i feel) (?:so |really |very |a bit |a little"
            r" )?(?:scared|afraid|frightened|worried|nervous)"
        ),
    ),
    (
        "feeling_angry",
        _pattern(
            r"(?:i m|im|i am|i feel) (?:so |really |very |a bit |a little"
            r" )?(?:angry|cross|mad|cranky|frustrated)"
        ),
    ),
    (
        "feeling_happy",
        _pattern(
            r"(?:i m|im|i am|i feel) (?:so |really |very )?(?:happy|glad"
            r"|excited|great|good)"
        ),
    ),
    (
        "alive",
        _pattern(
            r"are you (?:alive|real|a real|human|a human|a person|a robot|living)",
            r"do you have feelings|can you feel|do you feel|are you a toy",
        ),
    ),
    (
        "toy_name",
        _pattern(
            r"(?:what s|whats|what is) your name|who are you|what are you"
            r" called|do you have a name"
        ),
    ),
    (
        "child_name",
        _pattern(
            r"(?:what s|whats|what is) my name|do you know my name|who am i"
            r"|say my name"
        ),
    ),
    (
        "how_are_you",
        _pattern(
            r"how are you|how re you|how r u|how are u|how do you do"
            r"|how s it going|hows it going|how is your day"
        ),
    ),
    ("story", _pattern(r"stories|story|once upon a time|fairy tale")),
    ("joke", _pattern(r"jokes?|make me laugh|something funny|funny thing")),
    ("song", _pattern(r"songs?|sing|rhymes?|nursery rhymes?")),
    ("animal", _ANIMAL_QUESTION),
    ("rainbow", _pattern(r"rainbows?")),
    ("spider", _pattern(r"spiders?")),
    ("bees", _pattern(r"bees|bee|honey")),
    ("sky", _pattern(r"sky")),
    ("count", _pattern(r"count|counting|numbers to ten|to ten")),
    ("days", _pattern(r"days of the week|what day|which days|week days|weekdays")),
    ("thanks", _pattern(r"thank you|thanks|thank u|ta")),
    (
        "greeting",
        _pattern(
            r"hello|hi|hiya|hey|howdy|good morning|good afternoon"
            r"|good evening|hi there|hello there"
        ),
    ),
)


def _pick(options: Sequence[str], key: str) -> str:
    """One of ``options``, always the same for the same ``key`` (no process-random hash)."""
    return options[zlib.crc32(key.encode("utf-8")) % len(options)]


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars``: at a sentence end if one is far enough in,
    otherwise at a word boundary, otherwise hard."""
    if max_chars <= 0:
        return ""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    sentence_end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    if head[-1] in ".!?":
        return head
    if sentence_end >= max_chars // 3:
        return head[: sentence_end + 1]
    space = head.rfind(" ")
    if space > 0:
        return head[:space].rstrip(" ,;:")
    return head


def word_deltas(text: str) -> list[str]:
    """``text`` split into words, each with the spaces after it (they join back to ``text``)."""
    return re.findall(r"\S+\s*|\s+", text)


class OfflineChat:
    """A :class:`hub.voice.providers.ChatModel` that needs no model, network or randomness.

    ``child_name`` overrides the name read from the system message (see
    :func:`hub.conversation.prompt.name_from_prompt`).
    """

    name = "offline"

    def __init__(self, child_name: str | None = None) -> None:
        self._child_name = sanitise_name(child_name) if child_name is not None else None

    def compose(self, messages: Sequence[ChatMessage]) -> str:
        """The whole reply to ``messages``, before any length limit."""
        name = self._child_name or self._name_from(messages) or DEFAULT_NAME
        said = next((m.content for m in reversed(messages) if m.role == "user"), None)
        if said is None:
            return _TEMPLATES["greeting"].format(name=name)
        text = normalise(said)
        for intent, pattern in _INTENTS:
            match = pattern.search(text)
            if match is None:
                continue
            if intent == "animal":
                reply = self._animal(match)
                if reply is None:
                    continue
                return reply
            return self._reply(intent, name, text)
        return FALLBACK

    async def reply(self, messages: list[ChatMessage], max_chars: int) -> AsyncIterator[str]:
        """The reply as word deltas, together at most ``max_chars`` characters."""
        for delta in word_deltas(truncate(self.compose(messages), max_chars)):
            yield delta

    @staticmethod
    def _name_from(messages: Sequence[ChatMessage]) -> str | None:
        for message in messages:
            if message.role == "system":
                found = name_from_prompt(message.content)
                if found:
                    return found
        return None

    @staticmethod
    def _animal(match: re.Match[str]) -> str | None:
        said = match.group("animal") or match.group("animal2") or match.group("animal3")
        animal = _ANIMALS_BY_FORM.get(said) or _ANIMALS_BY_FORM.get(said.removesuffix("s"))
        if animal is None:
            return None
        sound = ANIMAL_SOUNDS[animal]
        return f"A {animal} says {sound}! {sound.capitalize()}, {sound}! Can you say it too?"

    @staticmethod
    def _reply(intent: str, name: str, text: str) -> str:
        if intent in _CHOICES:
            return _pick(_CHOICES[intent], text)
        if intent in FACTS:
            return FACTS[intent]
        if intent == "child_name" and name == DEFAULT_NAME:
            return "I don't know your name yet, but I'm happy to be your talking teddy!"
        return _TEMPLATES.get(intent, _TEMPLATES["greeting"]).format(name=name)


_CHOICES: Final = {"story": STORIES, "joke": JOKES, "song": SONGS}
_TEMPLATES: Final = {
    "goodbye": "Bye, {name}! Have a lovely day!",
    "feeling_sad": (
        "I'm sorry you feel that way, {name}. It can really help to tell a grown-up who loves "
        "you how you feel, and maybe have a big hug."
    ),
    "feeling_scared": (
        "It's okay to feel scared sometimes, {name}. Please tell a grown-up you trust. They can "
        "help you feel safe."
    ),
    "feeling_angry": (
        "Feeling cross is okay, {name}. Let's take a big slow breath together: in, and out. "
        "You can tell a grown-up how you feel, too."
    ),
    "feeling_happy": "Hooray! That's wonderful, {name}! What made today so good?",
    "alive": "I'm a toy that can talk. I'm not alive, but I love chatting with you!",
    "toy_name": "I'm Teddy, your talking toy bear!",
    "child_name": "Your name is {name}! What a lovely name.",
    "how_are_you": "I'm a toy, so I'm always ready to play! How are you, {name}?",
    "thanks": "You're welcome, {name}!",
    "greeting": "Hello, {name}! What would you like to talk about today?",
}
