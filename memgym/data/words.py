"""Built-in word lists and essay-like filler for the generated task sources, all offline.

RULER draws its keys and common words from the `wonderwords` lists and its "essay" haystack from
Paul Graham's essays; neither ships with memgym. This module holds the offline substitutes:
curated lists of common English nouns, adjectives and verbs (lowercase, single words, no
hyphens), a pronounceable pseudo-word generator for when a task needs more distinct words than
the lists hold, and a small sentence grammar that writes essay-like prose deterministically from
a `random.Random`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["NOUNS", "ADJECTIVES", "VERBS", "ENGLISH_WORDS", "essay_sentence", "essay_sentences",
           "pseudo_words"]

NOUNS: tuple[str, ...] = tuple("""
apple anchor ankle answer anthem apron arch arm army arrow artist atlas attic autumn avenue
axe baby bag bakery ball balloon banana band bank barn basket bath battery beach beam bean
bear bed bee beetle bell belt bench berry bicycle bird biscuit blanket blossom boat body bone
book boot border bottle bowl box branch bread brick bridge brook broom brother bubble bucket
budget bull bus bush butter button cabin cable cake calendar camera camp canal candle canoe
canvas canyon captain card carpet carriage carrot castle cat cave ceiling cellar chain chair
chalk channel chapter cheese cherry chest chicken chimney circle city clerk cliff clock cloud
coach coast coat coffee coin collar comet compass cook copper corn corner cottage cotton
country cousin cow crab cradle crane crayon creek crow crown cup curtain cushion dancer daisy
deer desert desk diamond diary dinner doctor dog doll dolphin donkey door dragon drawer dream
drum duck eagle ear earth elbow elephant engine envelope eye fabric face factory falcon farm
farmer feather fence ferry field finger fire fish flag flame flask flower flute fog forest
fork fountain fox frame friend frog fruit garden gate giant ginger glacier glass glove goat
gold grape grass guitar hammer hand harbor harp hat hawk hay heart hedge helmet hill hive
honey hook horizon horn horse hospital hotel house island ivory jacket jar jelly jewel journal
judge juice kettle key king kitchen kite knee knife knot ladder lake lamp lantern lawn leaf
lemon letter library lighthouse lily lion lizard lock map maple market meadow melon mirror
monkey moon mountain mouse museum nail needle nest net newspaper night nose notebook ocean
office olive onion orange orchard otter owl oyster paddle paint palace pan paper parrot path
peach pear pebble pencil pepper piano picnic pigeon pillow pilot pine planet plate plum pocket
poem pond potato pumpkin puppet puzzle queen quilt rabbit radio rain raven ribbon river road
robot rock roof room rope rose saddle sail sailor salt sand school scissors sea seed shadow
sheep shell ship shirt shoe shore shovel silver singer sister sky sled snail snake snow soap
sock soup spoon spring square squirrel stable stage stair star station statue stone storm
stove stream street string sugar suitcase summer sun swan sweater table tail teacher tent
thread throne thunder ticket tiger timber toast tomato tooth tower town toy tractor train
tree truck trumpet tulip tunnel turtle umbrella valley vase village violin wagon wall wallet
wand water wave whale wheat wheel whistle window wing winter wire wizard wolf wool yard zebra
""".split())
"""About 400 concrete nouns (objects, animals, places, people)."""

ADJECTIVES: tuple[str, ...] = tuple("""
able abrupt absent acidic active afraid agile alert alive amber ample ancient angry anxious
arctic ashen awake awful bashful bent bitter bland blank bleak blind blissful blue bold bony
brave brief bright brisk broad broken bronze bumpy busy calm careful casual cheap cheerful
chilly clean clever cloudy clumsy coastal cold colossal cool cozy crazy creamy crisp crooked
cruel curious curly damp dark dear deep dense dizzy dry dull dusty eager early earnest easy
elastic elegant empty endless equal even exact fair faint faithful famous fancy fast fierce
flat fluffy foggy fond fragile frail free fresh friendly frosty frozen funny fuzzy gentle giant
gifted glad gloomy glossy golden gracious grand gray greasy great green grim gritty happy harsh
hasty heavy hidden hollow honest huge humble hungry icy idle jolly juicy keen kind large lazy
lean light little lively lonely long loose loud lucky mellow merry mighty mild misty modern
moist narrow neat nervous new nimble noble noisy odd old orange pale patient plain polite poor
proud purple quick quiet rapid rare raw red rich rigid ripe rough round royal rusty sad salty
sandy scarlet secret sharp shiny short shy silent silky simple sleepy slim slow small smooth
snowy soft solid sour spicy steady steep sticky stormy strange strict strong sturdy sunny sweet
swift tall tame tender thick thin tidy tiny tired tough tranquil upbeat vast velvet vivid warm
wary weak wet wide wild windy wise witty wooden young zealous
""".split())
"""About 240 common adjectives."""

VERBS: tuple[str, ...] = tuple("""
accept add admire adopt advise agree allow answer appear argue arrange arrive ask attach
attend bake balance bathe beg begin behave believe belong bend bless blink boil borrow bounce
breathe bring build burn bury calculate call carry carve catch celebrate change chase cheer
chew choose clap climb collect comb compare complain connect consider cook copy count cover
crawl cross cry dance decide deliver describe design destroy discover divide drag draw dream
drink drive drop dust earn eat enjoy enter escape examine explain explore fetch fill find fix
float fold follow forget forgive gather gaze give glow grab greet grow guard guess hang harvest
hear help hide hike hold hope hug hum hunt hurry imagine improve invent invite join joke judge
jump keep kick kneel knit knock land laugh lead learn lend lift listen live look march measure
melt mend move notice obey offer open order organize paint pause pick plant play pour praise
pray prepare print promise protect pull push question race reach read relax remember repair
repeat reply rescue rest return ride ring rise roll rush sail scatter search settle sew shake
share shine shout sing sip sit sketch skip sleep slide smile sneeze solve sort spell spin
splash stack stare start stay steer stir stretch study swim swing talk taste teach tell thank
throw tickle travel trust try turn visit wait walk wander wash watch wave weave whisper whistle
win wish wonder work worry wrap write yawn yell
""".split())
"""About 240 common verbs in their base form."""

ENGLISH_WORDS: tuple[str, ...] = tuple(sorted(set(NOUNS) | set(ADJECTIVES) | set(VERBS)))
"""Every distinct word of NOUNS, ADJECTIVES and VERBS, sorted (RULER cwe's vocabulary)."""

# -- pseudo-words -----------------------------------------------------------------------------
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
           "gl", "pl", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "", "n", "r", "l", "s", "m")


def pseudo_words(rng: random.Random, exclude: set[str] | frozenset[str] = frozenset()
                 ) -> Iterator[str]:
    """Yield distinct pronounceable pseudo-words (2-4 syllables, e.g. "tremolan"), never repeating.

    Used when a task needs more distinct words than ENGLISH_WORDS holds; words in `exclude` are
    skipped. The stream is a pure function of the state of `rng`.
    """
    seen = set(exclude)
    while True:
        syllables = rng.choice((2, 3, 3, 4))
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
        word += rng.choice(_CODAS)
        if word not in seen:
            seen.add(word)
            yield word


# -- essay-like filler ------------------------------------------------------------------------
# A small grammar in the register of an essay about work, startups and ideas (the subject matter
# of the Paul Graham essays RULER uses), so the haystack reads like prose rather than noise.
_SUBJECTS = ("founders", "investors", "programmers", "startups", "big companies", "most people",
             "good writers", "students", "hackers", "designers", "users", "the best people",
             "young founders", "professors", "painters", "scientists", "managers", "customers",
             "beginners", "experts", "small teams", "ambitious people", "readers", "engineers")
_VERBS = ("build", "change", "discover", "ignore", "notice", "learn", "make", "need",
          "understand", "underestimate", "overestimate", "want", "find", "lose", "choose",
          "copy", "avoid", "measure", "earn", "explain", "question", "test", "fix", "share",
          "solve", "write", "seek", "fear", "value", "waste", "protect", "reward", "improve",
          "trust", "study", "borrow")
_THINGS = ("ideas", "money", "time", "work", "taste", "ambition", "curiosity", "wealth",
           "software", "essays", "problems", "questions", "growth", "rules", "habits",
           "mistakes", "advice", "schools", "markets", "risks", "products", "tools", "languages",
           "experiments", "opinions", "details", "patterns", "projects", "deadlines",
           "conventions", "prototypes", "arguments", "jobs", "cities", "books", "startups")
_ADJS = ("good", "new", "hard", "simple", "surprising", "important", "obvious", "difficult",
         "valuable", "strange", "dangerous", "useful", "ambitious", "unusual", "boring",
         "interesting", "small", "big", "rare", "common", "careful", "ordinary", "original",
         "expensive", "cheap", "popular", "unpopular", "early", "late", "serious")
_OPENERS = ("In practice,", "Historically,", "For example,", "Surprisingly,", "I think",
            "It seems to me that", "One reason is that", "The problem is that",
            "What this means is that", "Of course,", "In other words,", "Most of the time,",
            "As a rule,", "Oddly enough,", "Usually", "Sometimes", "In the beginning,",
            "Eventually", "At least in my experience,", "Fortunately,")
_ADVERBIALS = ("in the long run", "at first", "without realizing it", "for years",
               "more than they expect", "on purpose", "by accident", "in a startup",
               "at big companies", "in school", "every day", "after a while",
               "when nobody is watching", "for the wrong reasons", "almost immediately",
               "in retrospect", "if they are lucky", "with surprising speed")
_NUMBERS = ("two", "three", "four", "five", "several", "many", "a few")


def _object(rng: random.Random) -> str:
    thing = rng.choice(_THINGS)
    form = rng.randrange(5)
    if form == 0:
        return thing
    if form == 1:
        return f"{rng.choice(_ADJS)} {thing}"
    if form == 2:
        return f"the {rng.choice(_ADJS)} {thing}"
    if form == 3:
        return f"their {thing}"
    return f"their own {thing}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def essay_sentence(rng: random.Random) -> str:
    """One essay-like sentence (about 8 to 20 words) drawn from a small grammar with `rng`."""
    c = rng.choice
    subj, verb, obj = c(_SUBJECTS), c(_VERBS), _object(rng)
    form = rng.randrange(14)
    if form == 0:
        return f"{c(_OPENERS)} {subj} {verb} {obj} {c(_ADVERBIALS)}."
    if form == 1:
        return f"{_cap(subj)} who {verb} {obj} tend to {c(_VERBS)} {_object(rng)}."
    if form == 2:
        return f"The {c(_ADJS)} thing about {c(_THINGS)} is how rarely {subj} {verb} them."
    if form == 3:
        return f"If you want to {verb} {obj}, you have to {c(_VERBS)} {_object(rng)} first."
    if form == 4:
        return f"It is {c(_ADJS)} how often {subj} {verb} {obj}."
    if form == 5:
        return f"Why do {subj} {verb} {obj}?"
    if form == 6:
        return f"There are {c(_NUMBERS)} reasons {subj} {verb} {obj}."
    if form == 7:
        return f"{_cap(subj)} don't {verb} {obj} until it is too late."
    if form == 8:
        return f"That is why {subj} {verb} {obj} {c(_ADVERBIALS)}."
    if form == 9:
        return (f"{_cap(subj)} rarely {verb} {obj}, but when they do, the results are "
                f"{c(_ADJS)}.")
    if form == 10:
        return f"What matters is whether {subj} {verb} {obj}."
    if form == 11:
        return f"The more {subj} {verb} {obj}, the more they {c(_VERBS)} {_object(rng)}."
    if form == 12:
        return f"{_cap(subj)} {verb} {obj} {c(_ADVERBIALS)}."
    return f"{c(_OPENERS)} {subj} {verb} {obj}."


def essay_sentences(rng: random.Random) -> Iterator[str]:
    """An endless stream of essay-like sentences, a pure function of the state of `rng`."""
    while True:
        yield essay_sentence(rng)
