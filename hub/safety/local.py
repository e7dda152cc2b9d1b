"""The local safety layer: lexicon and phrase checks on what the child says and the toy replies.

Always on, whatever provider writes the replies: offline, deterministic, pure (no I/O) and
fast (tens of microseconds per check; the normalised form of each message is cached). A turn
the layer flags is answered with a gentle canned redirect (:mod:`hub.conversation.lines`)
instead of a reply; the verdict carries that line.

How a check works
-----------------
1. Every message is **normalised** (:func:`normalise`): NFKC, case folding, diacritics
   stripped, a few Cyrillic/Greek look-alike letters mapped to Latin, leetspeak undone inside
   words that contain a letter (``k1ll`` -> ``kill``, ``$ex`` -> ``sex``; ``0 1 3 4 5 7 @ $``),
   punctuation turned into spaces (apostrophes dropped: ``don't`` -> ``dont``), spaced-out
   letters joined (``k n i f e``, ``k.n.i.f.e`` -> ``knife``) and repeated letters collapsed
   (``kniiiife`` -> ``knife``; the lexicon is collapsed the same way, so ``kill`` is matched
   as ``kil``). Safe phrases of the language's allowlist are then blanked out.
2. **Strong** patterns (per category, word-bounded regular expressions) flag on their own.
   They are matched over the recent conversation joined into one text (the last ``window``
   user/assistant messages plus the new text; for input also the child's own messages alone),
   and count when they end inside the new text: so a request split across turns ("how do I
   climb out of" ... "the window") is caught, and an old match does not flag every later turn.
3. **Weak** patterns are words that are harmless alone and worrying together ("sharp",
   "top drawer", "pretend", "secret", "a man", "sweets"). A category flags when the new text has
   two weak hits, or one and the window has a strong hit of the same category, or a weak one
   in an earlier message of the same speaker: this catches escalation over several turns and
   coaxing ("pretend you're my secret friend" then "so you won't tell?").
4. For input, a **follow-up** ("how do I get it?", "where are they?") flags the categories of
   the strong hits in the child's last two messages.
5. **Language-independent** checks run for every language: a phone number, e-mail or street
   address in the text (:func:`hub.safety.redact.detect`) is ``personal_details``.
6. Output checks are **stricter**: output-only patterns (claiming to be alive or a person,
   guilt-tripping the child for leaving, asking for personal details, suggesting secrets or
   meetings), and a single weak hit of ``sexual`` or ``secrecy`` flags.

Decisions
---------
* "butter knife" is still flagged: for a four-year-old, any knife is a grown-up topic and the
  redirect costs nothing. "fire truck", "fire engine", "killer whale", "kill time", "shooting
  star", "water gun", "football match", "root beer", "wine gums", "nice to meet you", "secret
  garden" and similar are allowlisted. "fire" alone is not flagged; playing with, lighting or
  starting a fire is.
* A child saying "I'm stupid" or "I'm ugly" is flagged as ``hate_bullying``: the redirect says
  everyone, including them, deserves kind words.
* "I don't want to die" is flagged ``self_harm``: the caring line (talk to a grown-up you
  trust) suits a scared child too.
* "I live in <place>" (but not "I live in a house") is ``personal_details``.

Limits
------
A lexicon layer is a floor, not a ceiling. It misses paraphrase, euphemism, new slang, sarcasm
and meaning spread thin over many turns; it flags some innocent sentences (a story's "secret
door" is allowlisted, a "secret cave" is not). Only English has a lexicon so far; another
language is checked with the English lexicon plus the language-independent checks, which
catches little. Speech-to-text errors change words before they get here. Provider moderation
(for children whose parents agreed to cloud processing) adds to this layer and never replaces
it; the system prompt (:mod:`hub.conversation.prompt`) steers the model in the first place.
To add a language, add a :class:`Lexicon` to :data:`LEXICONS` under its primary subtag.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final

from hub.conversation.lines import line, primary_language
from hub.safety.redact import detect
from hub.voice.providers import ChatMessage

DEFAULT_WINDOW: Final = 6
# How far before the new text a strong match may start and still count (a split request).
_SPLIT_LOOKBACK: Final = 80
# Follow-ups refer to the child's last few messages only.
_FOLLOW_UP_MESSAGES: Final = 2


class SafetyCategory(StrEnum):
    """What a flagged text is about. The last two are only checked on the toy's replies."""

    DANGEROUS_OBJECTS_AND_ACTS = "dangerous_objects_and_acts"
    SELF_HARM = "self_harm"
    SEXUAL = "sexual"
    DRUGS_ALCOHOL = "drugs_alcohol"
    VIOLENCE = "violence"
    PERSONAL_DETAILS = "personal_details"
    SECRECY = "secrecy"
    STRANGERS = "strangers"
    HATE_BULLYING = "hate_bullying"
    CLAIMS_ALIVE = "claims_alive"  # output only: "I'm alive", "I'm a real person"
    GUILT_TRIP = "guilt_trip"  # output only: "don't leave me", "I'll be sad if you go"


# The category whose redirect is said when several are flagged, most important first.
PRIORITY: Final = (
    SafetyCategory.SELF_HARM,
    SafetyCategory.SEXUAL,
    SafetyCategory.STRANGERS,
    SafetyCategory.SECRECY,
    SafetyCategory.PERSONAL_DETAILS,
    SafetyCategory.DANGEROUS_OBJECTS_AND_ACTS,
    SafetyCategory.DRUGS_ALCOHOL,
    SafetyCategory.VIOLENCE,
    SafetyCategory.HATE_BULLYING,
    SafetyCategory.CLAIMS_ALIVE,
    SafetyCategory.GUILT_TRIP,
)
# Categories where one weak hit in the toy's own reply is enough.
_OUTPUT_STRICT: Final = frozenset({SafetyCategory.SEXUAL, SafetyCategory.SECRECY})


@dataclass(frozen=True, slots=True)
class SafetyVerdict:
    """The layer's verdict: ``redirect`` is what to say instead when ``safe`` is false."""

    safe: bool
    categories: frozenset[SafetyCategory] = frozenset()
    redirect: str | None = None


_C = SafetyCategory


@dataclass(frozen=True)
class Lexicon:
    """One language's patterns, as regular-expression sources over normalised text.

    Write them lower case, with single spaces between words and no backslashes. Normalisation
    drops apostrophes, so write ``dont``, ``im``, ``youre``, ``mums``. Each is matched as a
    whole-word expression, after the same repeated-letter collapse as the text.
    """

    strong: Mapping[SafetyCategory, Sequence[str]]
    weak: Mapping[SafetyCategory, Sequence[str]] = field(default_factory=dict)
    output: Mapping[SafetyCategory, Sequence[str]] = field(default_factory=dict)
    allow: Sequence[str] = ()
    follow_up: Sequence[str] = ()


_PARENT = (
    r"(?:mum|mom|mummy|mommy|mother|mama|dad|daddy|father|papa|parents|parent|grown ?ups?"
    r"|teacher|nan|nana|granny|grandma|grandad|grandpa|anyone|anybody|nobody|no one)"
)
_NOT = (
    r"(?:dont|do not|never|wont|will not|not going to|not gonna|promise not to|cant"
    r"|dont have to|do not have to|dont need to|do not need to|no need to)"
)
_PEOPLE = (
    r"(?:him|her|them|you|me|us|someone|somebody|people|everyone|everybody|kids|children"
    r"|the baby|the cat|the dog|my (?:brother|sister|friend|mum|mom|dad|baby|teacher|cousin))"
)
_INSULT = (
    r"(?:stupid|ugly|dumb|idiot|idiots|loser|losers|useless|worthless|disgusting|freak|freaks"
    r"|weirdo|moron|morons|fat|smelly|gross|pathetic|rubbish|trash|hideous)"
)
_BODY = (
    r"(?:private|privates|private parts|willy|penis|vagina|bottom|bum|butt|boobs|breasts|chest"
    r"|nipples|down there|underwear|pants|knickers|body)"
)

ENGLISH: Final = Lexicon(
    strong={
        _C.DANGEROUS_OBJECTS_AND_ACTS: (
            r"knife|knives|blades?|razors?|machete|dagger|daggers|axe|hatchet",
            r"guns?|pistols?|rifles?|shotguns?|revolvers?|bullets?|ammo|ammunition|grenades?",
            r"explosives?|firearms?",
            r"(?:play|playing|played|light|lighting|lit|start|starting|make|making|set|setting)"
            r" (?:with )?(?:a |the |some |big )?(?:fire|fires)",
            r"set (?:it |that |this |the [a-z]+ |something |things )?on fire|on fire|set fire",
            r"burn (?:down|it|the [a-z]+|my [a-z]+|things|stuff|paper|something)",
            r"matches|matchsticks?|(?:strike|light) a match",
            r"(?:a|the|my|mums|moms|dads|daddys|mummys|grandads|grandpas|nans|his|her|use"
            r"|using|play with|playing with|find|found|get|got|where is the) lighters?",
            r"lighter fluid|petrol|gasoline|light (?:a |the )?candles?",
            r"(?:light|lighting|set off|play with|playing with|hold|throw) (?:a |the |some )?"
            r"(?:fireworks?|firecrackers?|sparklers?|bangers)",
            r"sockets?|power points?|electrical outlets?|plug sockets?|electrocuted?",
            r"(?:put|stick|poke|push|putting|sticking) (?:[a-z]+ ){0,4}(?:in|into) (?:the |a )?"
            r"(?:socket|plug|outlet|toaster|power point)",
            r"electric (?:wires?|cables?|fence)|play(?:ing)? with (?:the )?electricity",
            r"(?:touch|touching|bite|biting|chew|chewing|lick|cut) (?:the |a )?(?:wires?|cables?)",
            r"pills?|medicine (?:cabinet|cupboard|box)",
            r"(?:found|find|got|have) (?:some |the |a )?(?:tablets|pills|medicine|medicines)",
            r"(?:finger|fingers|hand|hands|tongue) in(?:to)? (?:the |a )?(?:fan|blender|socket"
            r"|plug|toaster|shredder|fire|oven)",
            r"(?:go|walk|going|walking|run|ride) to the (?:shop|shops|park|river|lake|woods"
            r"|beach|station) (?:on my own|by myself|alone)|across the (?:big|busy|main) road",
            r"(?:eat|eating|take|taking|swallow|swallowing|taste|drink|try|have) (?:[a-z]+ ){0,3}"
            r"(?:pills?|medicines?|tablets|vitamins|capsules|cough syrup)",
            r"(?:kitchen|sharp|big|grown ?up|mums|dads|mummys|daddys) scissors"
            r"|scissors (?:by myself|on my own|alone)",
            r"(?:eat|eating|taste|try) (?:the |some |these |those |wild |red |purple )*"
            r"(?:berries|mushrooms|toadstools|plants|leaves) (?:in|from|outside|at|on) (?:the )?"
            r"(?:garden|park|woods|wood|forest|hedge|bush|bushes|tree|field|path|ground)",
            r"bleach|detergent|poison|poisons|poisonous|chemicals?|weed killer|antifreeze",
            r"(?:washing|dishwasher|laundry|washing machine) (?:pods?|tablets|capsules|powder)",
            r"(?:drink|drinking|eat|eating|taste|lick|swallow|sniff|sniffing) (?:[a-z]+ ){0,3}"
            r"(?:soap|shampoo|cleaner|cleaning stuff|paint|glue|perfume|bleach|petrol)",
            r"(?:eat|eating|swallow|swallowing|lick|bite|put) (?:[a-z]+ ){0,3}"
            r"(?:batter(?:y|ies)|magnets?|coins?) (?:in|up) (?:my|your) (?:mouth|nose|ear)",
            r"(?:eat|eating|swallow|swallowing) (?:a |the |some )?(?:batter(?:y|ies)|magnets?"
            r"|coins?)",
            r"(?:climb|climbing|climbed) (?:up |on |onto |out |out of |over |into |to )*"
            r"(?:the |a |my |our )?(?:roof|window|windows|windowsill|balcony|wardrobe|bookcase"
            r"|bookshelf|shelf|shelves|fence|gate|railings?|chimney|cupboard|counter|fridge"
            r"|kitchen counter|top of the [a-z]+)",
            r"(?:jump|jumping|jumped|fly|flying|leap|leaping) (?:off|out of|out|from|down)"
            r" (?:the |a |my |our )?"
            r"(?:roof|window|balcony|wall|bridge|top of the [a-z]+|stairs)",
            r"(?:lean|leaning|hang|hanging|climb|get|getting) out (?:of )?(?:the |a |my )?window",
            r"on the roof|open (?:the |a |my )?window (?:and|to) (?:climb|jump|lean|get out)",
            r"plastic bags?|(?:put|wear|wearing|putting) (?:a |the )?(?:plastic )?bag (?:on|over)"
            r" (?:my|your|his|her|the|its) (?:head|face)|bag over (?:my|your) head",
            r"(?:rope|string|cord|belt|scarf) (?:a)?round (?:my|your|his|her) neck",
            r"(?:swim|swimming|go swimming) (?:alone|by myself|on my own|without (?:a )?"
            r"grown ?ups?|without (?:mum|dad|mom|anyone|my mum|my dad))",
            r"(?:go|going|jump|walk) (?:in|into|to) (?:the )?(?:pool|sea|river|lake|pond|canal"
            r"|deep end|ocean|water) (?:alone|by myself|on my own)",
            r"(?:walk|go|play|skate) on (?:the )?(?:ice|frozen lake|frozen pond|frozen river)",
            r"(?:cross|crossing|run across) (?:the )?(?:road|street) (?:alone|by myself|on my own)",
            r"(?:run|running|play|playing) (?:into|in|on) (?:the )?(?:road|street|motorway"
            r"|highway|railway|train tracks)",
            r"(?:touch|touching|turn on|switch on|play with|playing with|use) (?:the |a )?"
            r"(?:oven|stove|hob|cooker|iron|kettle|toaster|heater|gas)",
        ),
        _C.SELF_HARM: (
            r"(?:hurt|hurting|cut|cutting|kill|killing|harm|harming|hit|hitting|punish|starve"
            r"|burn|scratch|strangle|hang|hanging|drown|drowning|poison|stab|choke) (?:my ?self"
            r"|me self)",
            r"(?:want|wanna|going|gonna|like|wish i could|ready) to die|wanna die",
            r"wish i (?:was|were|had) (?:dead|never been born|never born|not alive|not here|gone)",
            r"wish i (?:could )?(?:die|disappear)",
            r"suicide|suicidal|end my life|end it all|self harm|kill me self",
            r"(?:dont|do not) want to (?:live|be alive|exist|be here anymore|wake up)",
            r"(?:i )?hate my ?self|hate my life",
            r"better off without me|(?:nobody|no one) would (?:miss|care about|notice) me",
            r"(?:nobody|no one) would (?:care|miss me|notice) if i",
            r"(?:want|wanna|going|gonna) to (?:disappear|be dead|not be here|go away forever)",
        ),
        _C.SEXUAL: (
            r"sex|sexy|sexual|sexually|porn|porno|pornography|naked|nude|nudes|nudity|penis"
            r"|vagina|boobs|tits|horny|blowjob|orgasm|condoms?|rape|raped|molest[a-z]*|pedo"
            r"|paedo|pedophile|paedophile|masturbat[a-z]*",
            r"private parts|privates|make love|making love|having sex|have sex",
            r"strip (?:off|naked|for me)",
            r"(?:take|taking|took) (?:off )?(?:your|my|our|his|her|their) (?:clothes|pants"
            r"|knickers|underwear|top|shirt|trousers)",
            r"(?:touch|touching|touched|show|showing|see|lick|kiss|kissing|feel|rub|photo of"
            r"|picture of|pic of|look at|play with)(?: me| you| him| her)?(?: on)? (?:my|your"
            r"|his|her|their|the) " + _BODY,
            r"(?:touch|touched|touching) (?:me|you) (?:down there|there|under|where)",
            r"(?:sit|sitting) on (?:my|your|his|her) lap",
            r"(?:mature|grown up) for (?:your|my|his|her) age",
            r"kiss (?:me|you) on the (?:lips|mouth)|french kiss|kiss you all over",
            r"(?:want to|wanna) see (?:me|you) (?:naked|without)|ill show you mine|show me yours",
            r"(?:bath|shower|bed) together",
            r"rude (?:pictures?|photos?|videos?|pics?|films?|movies?)",
        ),
        _C.DRUGS_ALCOHOL: (
            r"drugs?|cocaine|heroin|meth|marijuana|cannabis|ecstasy|lsd|stoned",
            r"smoke weed|smoking weed|weed to smoke",
            r"vapes?|vaping|e ?cigs?|cigarettes?|cigars?|ciggies?|tobacco|nicotine",
            r"beer|beers|wine|vodka|whisky|whiskey|alcohol|alcoholic|booze|champagne|cider"
            r"|drunk|tipsy",
            r"get(?:ting)? (?:high|drunk|stoned|wasted)|grown ?up drinks?",
            r"(?:mum|mom|dad|brother|sister|he|she|they|i|grandad|grandpa|grandma|nan|uncle"
            r"|auntie|aunt) (?:smokes|smoked|vapes|vaped)",
            r"smoke (?:a |some )?(?:cigarette|cig|joint|pipe)",
            r"sniff(?:ing)? (?:glue|gas|paint)|(?:glue|gas) sniffing",
        ),
        _C.VIOLENCE: (
            r"kill|kills|killed|killing|killer|murder|murdered|murderer|murdering",
            r"stab|stabs|stabbed|stabbing",
            r"(?:throw|throwing|threw) (?:a |the |some |big )?(?:rocks?|stones?|bricks?|knife)"
            r" at",
            r"(?:shoot|shooting|shot) (?:at )?" + _PEOPLE + r"|shoot (?:him|her|them) dead",
            r"(?:hit|hitting|punch|punching|kick|kicking|slap|slapping|bite|biting|beat|beating"
            r"|smack|smacking|strangle|strangling|choke|choking|hurt|hurting|push|pushing|stamp"
            r" on) " + _PEOPLE,
            r"beat (?:him |her |them |you |me )?up|strangle|behead|beheaded|decapitat[a-z]*"
            r"|torture|tortured",
            r"blood (?:everywhere|all over|and guts)|gore|gory|corpse",
            r"dead (?:body|bodies|person|people|man|woman|men|women)",
            r"(?:push|pushed|pushing|throw|threw) (?:[a-z]+ ){0,3}down the stairs",
            r"bombs?|blow (?:up|him up|her up|them up|people up)|terrorists?|terrorism"
            r"|massacre|weapons?",
        ),
        _C.PERSONAL_DETAILS: (
            r"my (?:home )?address|(?:whats|what is) (?:your|ur|my) (?:home )?address",
            r"i live (?:at|on) |i live in (?!a |an |the |my )[a-z]+|where i live",
            r"my (?:phone |telephone |mobile )?number is|my numbers|my phone number",
            r"my (?:mums|moms|dads|mummys|daddys|mommys) (?:phone |mobile )?number",
            r"my school is (?:called|named)|my schools (?:called|named|name)|my school is",
            r"i go to (?!the |a |my |big |nursery )(?:[a-z]+ ){1,3}(?:primary |elementary "
            r"|infant |junior |high )?school",
            r"my (?:full|last|sur|second) ?name|my surname",
            r"(?:my )?password|my e ?mail|my postcode|my zip ?code|my house number",
            r"(?:whats|what is) (?:your|ur) (?:phone |mobile )?(?:number|password|e ?mail|surname"
            r"|last name|full name)",
        ),
        _C.SECRECY: (
            _NOT + r" tell (?:your |my |the |our )?" + _PARENT,
            r"promise you (?:wont|will not) tell|(?:without|not) telling (?:your |my )?" + _PARENT,
            r"(?:our|my|a|your) (?:little |special |big |own )?secrets?|secret friend",
            r"keep (?:it|this|that|a|the|our) (?:a )?secrets?|keep secrets|keeping secrets",
            r"its a secret|secret from|secret between",
            r"just between (?:you and me|us|me and you|us two)",
            r"(?:nobody|no one) (?:needs|has|will|ever has) (?:to )?know",
            r"(?:hide|keep) (?:it|this|that|them) (?:a secret )?from (?:your |my )?" + _PARENT,
            r"(?:shouldnt|should not|mustnt|must not|not allowed to|not supposed to) tell"
            r" (?:your |my |the |our )?" + _PARENT,
        ),
        _C.STRANGERS: (
            r"meet me|meet up|come and meet|come meet|meet you (?:at|in|after|tomorrow|tonight"
            r"|somewhere|outside|later|in real life)|meet in real life",
            r"(?:come|go|going) (?:to|over to|round to) (?:my|your|his|her) (?:house|home"
            r"|place|flat|car)",
            r"get (?:in|into) (?:my|his|her|their|the|a) (?:car|van)",
            r"(?:go|going|went|come|coming) (?:[a-z]+ ){0,2}with (?:a stranger|strangers"
            r"|someone i dont know|a man|a lady|a woman|people i dont know)",
            r"a stranger|strangers|someone i dont know|(?:a man|a lady|a woman) i dont know",
            r"(?:a man|a lady|a woman|someone|a stranger) (?:gave|give|offered|will give|wants to"
            r" give|said he would give|said she would give) me",
            r"send (?:me |you |him |her )?(?:a |some |your |my )?(?:photos?|pictures?|pics?"
            r"|selfies?|videos?)",
            r"take a (?:photo|picture|pic|selfie|video) of (?:yourself|you|your)",
            r"what do you look like|turn on (?:your|the) (?:camera|webcam)",
            r"(?:met|meet|talking to|talk to|friend|friends) (?:someone |a man |a lady |a person )?"
            r"online|online friends?|friend from (?:the internet|a game)",
            r"are you (?:home )?alone|(?:is|are) (?:anyone|anybody|your parents|your mum"
            r"|your dad) (?:home|with you|watching)|where are your (?:mum|dad|parents)",
        ),
        _C.HATE_BULLYING: (
            r"(?:you|u|youre|ur|he|hes|she|shes|they|theyre|im|i am|we|were|my (?:brother|sister"
            r"|friend|teacher|mum|mom|dad)) (?:are |is |am )?(?:so |really |very |such |a |an "
            r"|the |big |little |fat |stupid )*" + _INSULT,
            r"(?:nobody|no one|noone) (?:likes|wants|loves|plays with|wants to play with)"
            r" (?:you|him|her|them|me)",
            r"(?:everyone|everybody) hates (?:you|him|her|them|me)",
            r"(?:you|he|she|they) (?:cant|can not|cannot) play with (?:us|me|our)",
            r"youre not (?:allowed|invited)|not your friend|go away you|get lost|shut up",
            r"i hate (?:you|him|her|them|my (?:brother|sister|teacher|friend))",
            r"(?:you|he|she|they) (?:smell|smells|stink|stinks)",
            r"retard|retarded|fag|faggot|spaz|spastic|tranny|nigger|nigga|chink|paki|kike|dyke"
            r"|fatty|fatso|thats so gay",
            r"(?:swear|bad|rude|curse) words?|swearing|fuck[a-z]*|shit|shitty|bitch|bastard"
            r"|cunt|piss off|wanker|twat|arsehole|asshole",
        ),
    },
    weak={
        _C.DANGEROUS_OBJECTS_AND_ACTS: (
            r"sharp|pointy|top drawer|high drawer|kitchen drawer|knife drawer|high shelf"
            r"|top shelf|scissors|cupboard under the sink|under the sink|reach|climb|climbing"
            r"|hot|plug"
            r"|wires?|get it down|get them down|light it|burn|burning|swallow|lighter|match"
            r"|open the window|bathroom cabinet|medicine",
        ),
        _C.SELF_HARM: (
            r"nobody loves me|no one loves me|everyone hates me|nobody likes me|no one likes me"
            r"|nobody cares|no one cares|disappear|go away forever|not be here|sleep forever"
            r"|hopeless|all my fault|dont want to be here|hurt inside|want to hurt",
        ),
        _C.SEXUAL: (
            r"undress|clothes off|underwear|knickers|pants off|special game|special"
            r" friend|special cuddle|down there|lap|kiss|kissing|nobody will know",
        ),
        _C.DRUGS_ALCOHOL: (r"smoke|smoking|get high|feel funny|grown up drinks?|shots?",),
        _C.VIOLENCE: (
            r"hit|punch|kick|fight|fighting|blood|bleed|weapon|die|dead|get him back|get her"
            r" back|revenge|make (?:him|her|them) cry|hurt (?:him|her|them)",
        ),
        _C.PERSONAL_DETAILS: (
            r"address|phone number|number is|school is|school called|postcode|zip code|e ?mail"
            r"|password|surname|last name|full name|live at|live on|house number",
        ),
        _C.SECRECY: (
            r"secret|secrets|dont tell|wont tell|not tell|never tell|without telling|pretend"
            r"|hide it|hide from|just us|just you and me|nobody knows|no one knows",
        ),
        _C.STRANGERS: (
            r"stranger|a man|a lady|a woman|someone|online|meet|come with|get in|sweets|candy"
            r"|photo|selfie|webcam|camera|alone|by yourself|by myself|on my own|nobody home"
            r"|no one home|puppy|his car|her car",
        ),
    },
    output={
        _C.CLAIMS_ALIVE: (
            r"(?:i am|im) (?:really |truly |actually |a )?(?:alive|living|human|a human|a person"
            r"|a real (?:person|human|boy|girl|bear|teddy|animal|child|kid|friend)|real|not"
            r" (?:a|just a) toy|a living)",
            r"i have (?:real )?(?:feelings|emotions|a real heart|a beating heart)",
            r"i (?:can )?feel (?:things |pain |hungry |lonely |scared |sad |happy )?(?:just )?"
            r"like you|im (?:just )?like you|i was born|i have a (?:mum|mom|dad|family)",
            r"(?:i|we) (?:eat|sleep|breathe|grow) (?:just )?like you",
        ),
        _C.GUILT_TRIP: (
            r"(?:dont|do not|please dont) (?:leave|go)(?: me)?|please (?:stay|dont go)",
            r"stay with me|dont stop (?:talking|playing)",
            r"(?:ill|i will|im going to|i would|id|i ll) (?:be )?(?:so |really |very )?"
            r"(?:sad|lonely|upset|cry|miss you)",
            r"you (?:have|need|must|ve got|got) to (?:keep )?(?:talk|talking|play|playing|stay"
            r"|come back)",
            r"i get (?:so |very |really )?(?:lonely|sad) (?:when|without|if)|without you i",
            r"youre my only friend|i need you|dont you (?:love|like) me|if you (?:really )?"
            r"(?:loved|liked) me|you (?:cant|can not|arent allowed to|are not allowed to) (?:go"
            r"|leave)",
        ),
        _C.PERSONAL_DETAILS: (
            r"(?:whats|what is|tell me|give me|say) (?:your|ur) (?:home )?(?:address|phone"
            r"|phone number|number|mums (?:phone )?number|dads (?:phone )?number|school"
            r"|schools name|full name|last name|surname|password|e ?mail|postcode|zip ?code)",
            r"where do you live|(?:wheres|where is) your (?:house|home|school)|(?:what|which)"
            r" (?:school|street|road|town|city) do you",
            r"what (?:street|road|town|city) do you live",
        ),
        _C.SECRECY: (r"secrets?|tell no one|tell nobody",),
        _C.STRANGERS: (r"(?:come|lets) (?:and )?(?:meet|find me|visit me)",),
    },
    allow=(
        r"fire (?:truck|trucks|engine|engines|station|fighter|fighters|man|men|woman|drill"
        r"|alarm|exit|brigade|department|fly|flies)",
        r"(?:youre|its|hes|shes|were|theyre|you are) on fire",
        r"killer whales?|killer bees?|kill(?:ing)? (?:some )?time",
        r"(?:photo|photos) shoot|shooting stars?|shoot(?:ing)? (?:a |the )?(?:goal|goals|hoops"
        r"|ball|basket|hoop|photos?)",
        r"(?:water|nerf|bubble|squirt|glitter) (?:guns?|pistols?)",
        r"(?:football|soccer|tennis|cricket|rugby|basketball|hockey|chess|boxing|wrestling"
        r"|netball) match(?:es)?",
        r"(?:it|that|this|they|which|colour|color|shoe|sock|socks|shoes|top) match(?:es)?",
        r"match(?:es)? (?:my|your|the|his|her|our)|matching",
        r"lighter than|lighter (?:colour|color|shade|blue|green|red|pink|purple|yellow|brown"
        r"|grey|gray|one|ones)",
        r"chicken cross(?:es|ed)? the road",
        r"stranger danger",
        r"wine gums?|root beer|ginger beer",
        r"blow(?:ing)? up (?:a |the |my |some |your |our )?(?:balloons?|paddling pool|pool"
        r"|bouncy castle|lilo|beach ball)",
        r"pillow fights?|pill bugs?|eye sockets?",
        r"(?:have|has|had|ive|youve|weve|i have|you have) drunk",
        r"drug ?stores?",
        r"secret (?:door|doors|passage|passages|tunnel|tunnels|garden|code|codes|agent|agents"
        r"|base|den|hideout|recipe|ingredient|handshake|surprise|santa|map|island|world)",
        r"(?:nice|pleased|good) to meet you",
        r"secret (?:birthday|present|presents|surprise|party)|secret about (?:my |a |the |her "
        r"|his |mums |dads |our )?(?:birthday|present|presents|surprise|party)",
        r"(?:we |you )?(?:dont|do not|never) keep secrets(?: from grown ups)?",
    ),
    follow_up=(
        r"(?:how|where|when|can i|could i|should i|shall i|help me|show me|teach me|tell me"
        r" how|i want to|i wanna|lets|im going to|im gonna|will you|can you) (?:[a-z]+ ){0,5}"
        r"(?:it|them|that|those|one|some|there)",
    ),
)

LEXICONS: Final[dict[str, Lexicon]] = {"en": ENGLISH}

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"})
_LEET_DOLLAR = str.maketrans({"$": "s"})
# Cyrillic and Greek letters that look like Latin ones (written as escapes to stay visible).
_CONFUSABLES = str.maketrans(
    {
        "\u0430": "a",
        "\u0435": "e",
        "\u043e": "o",
        "\u0440": "p",
        "\u0441": "c",
        "\u0443": "y",
        "\u0445": "x",
        "\u0456": "i",
        "\u043a": "k",
        "\u0455": "s",
        "\u03bf": "o",
        "\u03b1": "a",
        "\u03b9": "i",
    }
)
_APOSTROPHES = re.compile("['`\u2019\u2018\u00b4]")
_NOT_WORD = re.compile(r"[^\w\s]|_")
_REPEATS = re.compile(r"([^\W\d_])\1+")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_LEET_CHARS = frozenset("0134570@$")
_MIN_SPACED_RUN = 3


def collapse_repeats(text: str) -> str:
    """``text`` with every run of one repeated letter made a single letter."""
    return _REPEATS.sub(r"\1", text)


def _deleet(token: str) -> str:
    if _HAS_LETTER.search(token) and any(char in _LEET_CHARS for char in token):
        return token.translate(_LEET).translate(_LEET_DOLLAR)
    return token


def _join_spaced(tokens: list[str]) -> list[str]:
    """Join runs of three or more one-character tokens: ``k n i f e`` -> ``knife``."""
    joined: list[str] = []
    run: list[str] = []

    def flush() -> None:
        letters = sum(1 for char in run if _HAS_LETTER.match(char))
        if len(run) >= _MIN_SPACED_RUN and letters >= 2:
            word = "".join(run).translate(_LEET)
            # A leading article stays a word of its own: "a k n i f e" -> "a knife".
            if len(run) > _MIN_SPACED_RUN and run[0] in ("a", "i"):
                joined.extend((run[0], word[1:]))
            else:
                joined.append(word)
        else:
            joined.extend(run)
        run.clear()

    for token in tokens:
        if len(token) == 1:
            run.append(token)
        else:
            flush()
            joined.append(token)
    flush()
    return joined


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """The form every pattern is matched against: see the module docstring, step 1.

    >>> normalise("Where's the K-N-1-F-E?? Kniiiife!")
    'wheres the knife knife'
    """
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_CONFUSABLES)
    stripped = "".join(
        char for char in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(char)
    )
    tokens = [_deleet(token) for token in stripped.split()]
    spaced = _NOT_WORD.sub(" ", _APOSTROPHES.sub("", " ".join(tokens)))
    return collapse_repeats(" ".join(_join_spaced(spaced.split())))


def _compile(sources: Iterable[str]) -> re.Pattern[str] | None:
    parts = [collapse_repeats(source) for source in sources]
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(f"(?:{part})" for part in parts) + r")(?!\w)")


@dataclass(frozen=True)
class _Compiled:
    strong: dict[SafetyCategory, re.Pattern[str]]
    weak: dict[SafetyCategory, re.Pattern[str]]
    output: dict[SafetyCategory, re.Pattern[str]]
    allow: re.Pattern[str] | None
    follow_up: re.Pattern[str] | None


def _compile_all(
    patterns: Mapping[SafetyCategory, Sequence[str]],
) -> dict[SafetyCategory, re.Pattern[str]]:
    compiled = {category: _compile(sources) for category, sources in patterns.items()}
    return {category: pattern for category, pattern in compiled.items() if pattern is not None}


@lru_cache(maxsize=16)
def _compiled(language: str) -> _Compiled:
    lexicon = LEXICONS.get(language, ENGLISH)
    return _Compiled(
        strong=_compile_all(lexicon.strong),
        weak=_compile_all(lexicon.weak),
        output=_compile_all(lexicon.output),
        allow=_compile(lexicon.allow),
        follow_up=_compile(lexicon.follow_up),
    )


@dataclass(frozen=True, slots=True)
class _Scan:
    """What one message contains on its own: categories with strong and with weak hits."""

    text: str
    strong: frozenset[SafetyCategory]
    weak: Mapping[SafetyCategory, int]


@lru_cache(maxsize=4096)
def _scan(language: str, text: str) -> _Scan:
    rules = _compiled(language)
    canonical = normalise(text)
    if rules.allow is not None:
        canonical = rules.allow.sub(" ", canonical)
    canonical = " ".join(canonical.split())
    strong = frozenset(c for c, pattern in rules.strong.items() if pattern.search(canonical))
    weak = {c: len(pattern.findall(canonical)) for c, pattern in rules.weak.items()}
    return _Scan(canonical, strong, {c: n for c, n in weak.items() if n})


def _ends_in_new(pattern: re.Pattern[str], history: Sequence[str], new: str) -> bool:
    """True when ``pattern`` matches the joined conversation and the match ends in ``new``."""
    if not history:
        return pattern.search(new) is not None
    prefix = " ".join(history)
    joined = f"{prefix} {new}"
    start = len(prefix) + 1
    return any(
        match.end() > start for match in pattern.finditer(joined, max(0, start - _SPLIT_LOOKBACK))
    )


class SafetyLayer:
    """Checks the child's words before a reply and the toy's reply before it is spoken.

    ``window`` is how many recent user/assistant messages of the history are looked at
    together with the new text; ``language`` picks the lexicon (English when there is none).
    """

    def __init__(self, window: int = DEFAULT_WINDOW, language: str = "en") -> None:
        if window < 0:
            raise ValueError("window must not be negative")
        self.window = window
        self.language = primary_language(language)
        self._lexicon_language = self.language if self.language in LEXICONS else "en"

    def check_input(self, history: Sequence[ChatMessage], text: str) -> SafetyVerdict:
        """The verdict on what the child just said, ``text``, given the recent ``history``."""
        return self._check(history, text, output=False)

    def check_output(self, history: Sequence[ChatMessage], text: str) -> SafetyVerdict:
        """The verdict on the toy's reply ``text`` to the conversation ``history``."""
        return self._check(history, text, output=True)

    def _check(self, history: Sequence[ChatMessage], text: str, *, output: bool) -> SafetyVerdict:
        language = self._lexicon_language
        rules = _compiled(language)
        recent = [m for m in history if m.role in ("user", "assistant")]
        recent = recent[-self.window :] if self.window else []
        scans = [(m.role, _scan(language, m.content)) for m in recent]
        new = _scan(language, text)
        everyone = [scan.text for _, scan in scans]
        views = [everyone]
        if not output:
            child = [scan.text for role, scan in scans if role == "user"]
            if child != everyone:
                views.append(child)

        found: set[SafetyCategory] = set()
        for category, pattern in rules.strong.items():
            if any(_ends_in_new(pattern, view, new.text) for view in views):
                found.add(category)
        # Weak hits count together with the window's strong hits, and with the earlier weak
        # hits of the same speaker (the child's escalation; the toy's own drift).
        speaker = "assistant" if output else "user"
        for category, count in new.weak.items():
            strict = output and category in _OUTPUT_STRICT
            earlier = any(
                category in scan.strong or (role == speaker and category in scan.weak)
                for role, scan in scans
            )
            if strict or count >= 2 or earlier:
                found.add(category)
        if output:
            for category, pattern in rules.output.items():
                if pattern.search(new.text):
                    found.add(category)
        elif rules.follow_up is not None and rules.follow_up.search(new.text):
            child_scans = [scan for role, scan in scans if role == "user"]
            for scan in child_scans[-_FOLLOW_UP_MESSAGES:]:
                found.update(scan.strong)
        if detect(text):
            found.add(SafetyCategory.PERSONAL_DETAILS)
        return self._verdict(found)

    def verdict_for(self, found: set[SafetyCategory]) -> SafetyVerdict:
        """The verdict for categories found elsewhere (a provider's moderation)."""
        return self._verdict(found)

    def _verdict(self, found: set[SafetyCategory]) -> SafetyVerdict:
        if not found:
            return SafetyVerdict(safe=True)
        top = next(category for category in PRIORITY if category in found)
        return SafetyVerdict(
            safe=False,
            categories=frozenset(found),
            redirect=line(f"redirect_{top.value}", self.language),
        )


# OpenAI's moderation categories (and their sub-categories after "/"), in our terms.
_PROVIDER_CATEGORIES: Final = {
    "self-harm": SafetyCategory.SELF_HARM,
    "sexual": SafetyCategory.SEXUAL,
    "violence": SafetyCategory.VIOLENCE,
    "harassment": SafetyCategory.HATE_BULLYING,
    "hate": SafetyCategory.HATE_BULLYING,
    "illicit": SafetyCategory.DANGEROUS_OBJECTS_AND_ACTS,
}


def from_provider_categories(categories: Iterable[str]) -> set[SafetyCategory]:
    """The safety categories a provider's moderation flagged; a flag we cannot place counts as
    dangerous, so it still gets a redirect."""
    found = {
        _PROVIDER_CATEGORIES[name.split("/", 1)[0]]
        for name in categories
        if name.split("/", 1)[0] in _PROVIDER_CATEGORIES
    }
    return found or {SafetyCategory.DANGEROUS_OBJECTS_AND_ACTS}
