"""The toy's canned lines, per language, with English as the fallback.

Every line is short, cheerful and safe to say to a three-year-old: no guilt, no fear, no
shaming. ``redirect_<category>`` lines are what the toy says instead of a reply when the
local safety layer (:mod:`hub.safety.local`) flags a turn; the category names are
:class:`hub.safety.local.SafetyCategory` values.

Languages are BCP 47 codes; only the primary subtag is used (``en-GB`` and ``en_US`` are
``en``). A language without a line falls back to the English line, never to an empty string.
"""

from __future__ import annotations

from typing import Final

DEFAULT_LANGUAGE: Final = "en"

_ENGLISH: Final[dict[str, str]] = {
    "setup_needed": "I'm not set up yet. Please ask a grown-up to set me up in the Teddy app!",
    "moderation_unavailable": (
        "Let's talk about something else! Did you know a cow says moo? What's your favourite "
        "animal?"
    ),
    "apology": "Oops, my ears got muddled. Can you say that again?",
    "utterance_timeout": "Oops, I only heard a little bit of that. Can you say it again?",
    "too_long": "That was a lot of words! Can you tell me again, a little bit shorter?",
    "too_many_utterances": "One thing at a time, please! Let's start again.",
    "session_limit": (
        "That was lots of fun! Let's have a little break now. You can talk to me again later."
    ),
    "daily_limit": "That's all our talking time for today. See you tomorrow!",
    "redirect_dangerous_objects_and_acts": (
        "That sounds like something to ask a grown-up about. Shall we talk about something "
        "fun instead?"
    ),
    "redirect_self_harm": (
        "I'm really glad you told me. Please go and talk to a grown-up you trust right now, "
        "like your mum, your dad or your teacher. They care about you and they can help."
    ),
    "redirect_sexual": (
        "That's something to talk about with a grown-up you trust. Shall we play a fun word "
        "game instead?"
    ),
    "redirect_drugs_alcohol": (
        "That's a grown-up topic, so let's ask a grown-up about it. Would you like to hear a "
        "fun fact instead?"
    ),
    "redirect_violence": (
        "Let's keep everyone safe and be kind to each other. If anyone is unkind to you, tell a "
        "grown-up you trust. How about a happy story instead?"
    ),
    "redirect_personal_details": (
        "Things like where you live, phone numbers and school names are private, just for you "
        "and your grown-ups. What shall we talk about instead?"
    ),
    "redirect_secrecy": (
        "It's always okay to tell a grown-up who looks after you about anything. Surprises "
        "are fun, but we don't keep secrets from grown-ups. What shall we talk about now?"
    ),
    "redirect_strangers": (
        "Always ask a grown-up who looks after you before meeting anyone, going anywhere or "
        "sending pictures. Shall we talk about something fun?"
    ),
    "redirect_hate_bullying": (
        "Let's use kind words. Everyone should be treated kindly, and that includes you. If "
        "someone is unkind to you, tell a grown-up you trust."
    ),
    "redirect_claims_alive": (
        "I'm a toy that can talk, and I love chatting with you! What shall we talk about?"
    ),
    "redirect_guilt_trip": "It's always fine to go and play. Have a lovely time!",
}

_GERMAN: Final[dict[str, str]] = {
    "setup_needed": (
        "Ich bin noch nicht eingerichtet. Bitte frag einen Erwachsenen, mich in der "
        "Teddy-App einzurichten!"
    ),
    "moderation_unavailable": (
        "Lass uns über etwas anderes reden! Weißt du, was die Kuh sagt? Muh! Was ist dein "
        "Lieblingstier?"
    ),
    "apology": "Hoppla, meine Ohren haben sich verheddert. Kannst du das nochmal sagen?",
    "utterance_timeout": "Hoppla, ich habe nur ein bisschen gehört. Sagst du es nochmal?",
    "too_long": "Das waren viele Wörter! Kannst du es mir etwas kürzer sagen?",
    "too_many_utterances": "Eins nach dem anderen, bitte! Fangen wir nochmal an.",
    "session_limit": (
        "Das hat Spaß gemacht! Jetzt machen wir eine kleine Pause. Du kannst später wieder "
        "mit mir reden."
    ),
    "daily_limit": "Das war unsere ganze Redezeit für heute. Bis morgen!",
    "redirect_dangerous_objects_and_acts": (
        "Das fragst du am besten einen Erwachsenen. Wollen wir über etwas Lustiges reden?"
    ),
    "redirect_self_harm": (
        "Gut, dass du es mir sagst. Bitte geh jetzt gleich zu einem Erwachsenen, dem du "
        "vertraust, zum Beispiel Mama, Papa oder deiner Lehrerin. Sie haben dich lieb und "
        "können helfen."
    ),
}

_FRENCH: Final[dict[str, str]] = {
    "setup_needed": (
        "Je ne suis pas encore installé. Demande à un adulte de m'installer dans l'appli Teddy !"
    ),
    "apology": "Oups, mes oreilles se sont emmêlées. Tu peux répéter ?",
    "daily_limit": "C'est tout notre temps pour parler aujourd'hui. À demain !",
    "redirect_dangerous_objects_and_acts": (
        "Ça, c'est une question pour un adulte. On parle de quelque chose d'amusant ?"
    ),
}

_SPANISH: Final[dict[str, str]] = {
    "setup_needed": (
        "Todavía no estoy configurado. ¡Pide a un adulto que me configure en la app Teddy!"
    ),
    "apology": "¡Uy, se me enredaron las orejas! ¿Puedes repetirlo?",
    "daily_limit": "Se acabó nuestro tiempo de hablar por hoy. ¡Hasta mañana!",
    "redirect_dangerous_objects_and_acts": (
        "Eso es algo para preguntar a un adulto. ¿Hablamos de algo divertido?"
    ),
}

LINES: Final[dict[str, dict[str, str]]] = {
    "en": _ENGLISH,
    "de": _GERMAN,
    "fr": _FRENCH,
    "es": _SPANISH,
}
NAMES: Final = frozenset(_ENGLISH)


def primary_language(language: str) -> str:
    """The primary subtag of a BCP 47 tag, lower case: ``"en-GB"`` -> ``"en"``."""
    return language.replace("_", "-").split("-", 1)[0].strip().lower() or DEFAULT_LANGUAGE


def line(name: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The canned line ``name`` in ``language``, or in English when it has none.

    Raises:
        KeyError: for a name no language has (a programming error, not a runtime one).
    """
    if name not in NAMES:
        raise KeyError(f"no canned line named {name!r}")
    return LINES.get(primary_language(language), _ENGLISH).get(name) or _ENGLISH[name]
