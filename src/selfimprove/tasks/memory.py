"""Memory items (key → text to recall) and the task that asks a model to recall them.

Three sources:
- `synthetic_items`: people with facts drawn uniformly and independently from stated sets (`FieldSpace`),
  so the information in an item is known exactly: log2 of each field's set size, summed (Allen-Zhu & Li 2024,
  "Physics of Language Models 3.3", count stored knowledge in bits the same way). Keys (first and last name)
  are drawn without replacement, so no two items share a key.
- `poem_items`: poems ({title, author, lines}, the format of `../shared/data/poems/`) cut to their first
  lines within `max_chars` characters (Wang & Li 2024 recite poems of at most 256 characters from author
  and title). The key is the title and author written as a poem is printed.
- `keyed_items`: any JSONL of {key, value} (and optionally `id`).

The matching rule is exact and written down (`normalise`, `recalled_exactly`): line ends and surrounding
blank lines are normalised, nothing else (case, punctuation and spelling count); a recall is exact when the
normalised generation begins with the normalised value, so a base model that goes on writing after the
poem still counts, and a model that stops early does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.core.types import Problem
from selfimprove.tasks.base import TaskBase
from selfimprove.tasks.jsonl import read_jsonl, require_str


@dataclass(frozen=True)
class FieldSpace:
    """One fact of a synthetic item: written `label value`, the value drawn uniformly from `values`."""

    name: str
    label: str
    values: tuple[str, ...]

    @property
    def bits(self) -> float:
        return math.log2(len(self.values))


@dataclass(frozen=True)
class MemoryItem:
    """What the model sees (`prompt`) and must produce (`value`); `fields` are a synthetic item's facts."""

    id: str
    prompt: str
    value: str
    fields: tuple[tuple[str, str], ...] = ()
    """(field name, true value) of a synthetic item; empty for free text (poems, your own items)."""


FIRST_NAMES = (
    "Ada", "Alan", "Alice", "Amos", "Anna", "Arlo", "Beth", "Boris", "Carl", "Cora", "Dara", "Dean", "Dora",
    "Eli", "Elsa", "Enzo", "Ezra", "Fay", "Felix", "Gina", "Glen", "Hana", "Hans", "Ida", "Igor", "Iris",
    "Ivan", "Jade", "Joel", "June", "Karl", "Kira", "Lars", "Lena", "Lise", "Luca", "Mara", "Milo", "Nadia",
    "Nils", "Nora", "Omar", "Otto", "Pia", "Quinn", "Raul", "Rhea", "Rita", "Sami", "Sara", "Sven", "Tess",
    "Theo", "Tina", "Udo", "Uma", "Vera", "Vito", "Wes", "Wren", "Xena", "Yara", "Yves", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Baker", "Bishop", "Brandt", "Carver", "Castro", "Dalton", "Dixon", "Ellis", "Engel", "Farrow",
    "Fischer", "Garner", "Gomez", "Hale", "Hardy", "Ingram", "Ivers", "Jansen", "Jordan", "Keller", "Kemp",
    "Lange", "Lowell", "Marsh", "Moreau", "Nash", "Novak", "Olsen", "Ortiz", "Parker", "Petrov", "Quade",
    "Quinlan", "Reyes", "Rowan", "Sato", "Shaw", "Stone", "Sutton", "Tanaka", "Thorne", "Ulrich", "Upton",
    "Vance", "Varga", "Walsh", "Weber", "Wilde", "Wolfe", "Xu", "Yates", "Young", "Zeller", "Zimmer", "Bauer",
    "Brooks", "Cole", "Drake", "Frost", "Grant", "Holt", "Knox", "Lund",
)  # fmt: skip
CITIES = (
    "Lisbon", "Oslo", "Cairo", "Lima", "Quito", "Dublin", "Prague", "Vienna", "Madrid", "Athens", "Berlin",
    "Warsaw", "Sofia", "Riga", "Tallinn", "Vilnius", "Zagreb", "Belgrade", "Helsinki", "Bern", "Rome", "Paris",
    "London", "Nairobi", "Accra", "Dakar", "Tunis", "Rabat", "Hanoi", "Manila", "Seoul", "Tokyo",
)  # fmt: skip
COLOURS = (
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "black", "white", "grey", "teal",
    "gold", "silver", "violet", "olive",
)  # fmt: skip

DEFAULT_SPACES = (
    FieldSpace("born", "born", tuple(str(year) for year in range(1900, 2000))),
    FieldSpace("city", "lives in", CITIES),
    FieldSpace("code", "code", tuple(f"{n:04d}" for n in range(10000))),
    FieldSpace("colour", "likes", COLOURS),
)


def bits_per_item(spaces: Sequence[FieldSpace] = DEFAULT_SPACES) -> float:
    """The information in one synthetic item's value: its fields are independent and uniform."""
    return sum(space.bits for space in spaces)


def synthetic_prompt(name: str) -> str:
    return f"Facts about {name}:"


def synthetic_value(facts: Sequence[tuple[FieldSpace, str]]) -> str:
    return " " + ", ".join(f"{space.label} {value}" for space, value in facts) + "."


def synthetic_items(count: int, seed: int = 0, spaces: Sequence[FieldSpace] = DEFAULT_SPACES) -> list[MemoryItem]:
    """`count` people with distinct names, each field drawn uniformly from its set (seeded: item i is the
    same whatever `count` is, so a larger set holds the smaller)."""
    keys = len(FIRST_NAMES) * len(LAST_NAMES)
    if not 0 < count <= keys:
        raise ConfigError(f"synthetic items: count must be in 1..{keys} (distinct names), got {count}")
    order = random.Random(f"keys-{seed}").sample(range(keys), keys)
    items = []
    for index, key in enumerate(order[:count]):
        name = f"{FIRST_NAMES[key // len(LAST_NAMES)]} {LAST_NAMES[key % len(LAST_NAMES)]}"
        rng = random.Random(f"facts-{seed}-{index}")
        facts = [(space, rng.choice(space.values)) for space in spaces]
        items.append(
            MemoryItem(
                id=f"s{index}",
                prompt=synthetic_prompt(name),
                value=synthetic_value(facts),
                fields=tuple((space.name, value) for space, value in facts),
            )
        )
    return items


def parse_fields(text: str, spaces: Sequence[FieldSpace] = DEFAULT_SPACES) -> dict[str, str]:
    """Field name -> the value written after its label in `text` (the first occurrence, up to a comma, full
    stop or line end; no value of a field contains one). Fields not written are absent."""
    found = {}
    for space in spaces:
        match = re.search(rf"(?:^|[\s,]){re.escape(space.label)} ([^,.\n]*)", text)
        if match:
            found[space.name] = match.group(1).strip()
    return found


def poem_text(lines: Sequence[str], max_chars: int) -> str:
    """The poem's first lines (stanza breaks kept) while they fit in `max_chars`; the first line, cut, when
    it alone is longer."""
    text = ""
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if len(candidate.strip()) > max_chars:
            break
        text = candidate
    text = text.strip()
    return text or next((line for line in lines if line.strip()), "")[:max_chars].strip()


def poem_prompt(title: str, author: str) -> str:
    return f"{title.strip()}\nby {author.strip()}\n\n"


def poem_items(path: str | Path, max_chars: int = 256) -> list[MemoryItem]:
    """Poems of a JSONL file of {title, author, lines}; errors name the file, line and field."""
    items = []
    for line, record in read_jsonl(path):
        title, author = require_str(record, "title", path, line), require_str(record, "author", path, line)
        lines = record.get("lines")
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines) or not any(lines):
            raise DataError(path, "expected a non-empty list of strings", line=line, field="lines")
        items.append(MemoryItem(id=f"p{line}", prompt=poem_prompt(title, author), value=poem_text(lines, max_chars)))
    return _distinct_prompts(items, path)


def keyed_items(path: str | Path) -> list[MemoryItem]:
    """Items of a JSONL file of {key, value[, id]}: the key is the prompt as written."""
    items = []
    for line, record in read_jsonl(path):
        key, value = require_str(record, "key", path, line), require_str(record, "value", path, line)
        items.append(MemoryItem(id=str(record.get("id", f"k{line}")), prompt=key, value=value))
    return _distinct_prompts(items, path)


def _distinct_prompts(items: list[MemoryItem], path: str | Path) -> list[MemoryItem]:
    """One item per prompt: two different texts under one key cannot both be recalled (the first is kept)."""
    seen: dict[str, MemoryItem] = {}
    for item in items:
        seen.setdefault(item.prompt, item)
    ids = [item.id for item in seen.values()]
    if len(set(ids)) != len(ids):
        raise DataError(path, "an id is used twice", field="id")
    return list(seen.values())


def load_items(source: str, count: int, seed: int = 0, max_chars: int = 256) -> list[MemoryItem]:
    """`count` items of `source` ("synthetic", or a JSONL file of poems or of {key, value}), in a seeded
    random order for files (item i is the same whatever `count` is)."""
    if source == "synthetic":
        return synthetic_items(count, seed)
    path = Path(source)
    first = next(read_jsonl(path))[1]
    items = poem_items(path, max_chars) if "lines" in first else keyed_items(path)
    random.Random(f"order-{seed}").shuffle(items)
    if count > len(items):
        raise ConfigError(f"{path}: {count} items asked for, the file has {len(items)} (with distinct keys)")
    return items[:count]


def normalise(text: str) -> str:
    """The matching rule's view of a text: CRLF as LF, trailing spaces of each line and surrounding blank lines
    removed, the leading space of the first line removed; case, punctuation and spelling kept."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n").lstrip()


def recalled_exactly(generated: str, value: str) -> bool:
    return normalise(generated).startswith(normalise(value))


def recalled_part(generated: str, value: str) -> str:
    """The generation cut to the value's length (what similarity is measured on: text after it is ignored)."""
    return normalise(generated)[: len(normalise(value))]


class MemoryTask(TaskBase):
    """Recall of `items` from their keys: the prompt is the key, the answer the generation (normalised),
    graded by `recalled_exactly`. `role` names the set (trained, control) in the run's identity."""

    name = "memory"

    def __init__(self, items: Sequence[MemoryItem], role: str = "items"):
        self.items = list(items)
        self.role = role
        self.by_id = {item.id: item for item in self.items}
        digest = hashlib.sha256(json.dumps([(i.id, i.prompt, i.value) for i in self.items]).encode()).hexdigest()
        self._fingerprint = digest[:16]

    def describe(self) -> dict:
        return {"task": self.name, "role": self.role, "items": len(self.items), "fingerprint": self._fingerprint}

    def problems(self, split: str = "test", limit: int | None = None) -> Iterator[Problem]:
        if split != "test":
            raise ConfigError(f"task 'memory' has only the items it was given (split 'test'), not {split!r}")
        for item in self.items[:limit]:
            yield Problem(id=item.id, question=item.prompt, reference=item.value, metadata=_metadata(item))

    def format_prompt(self, problem: Problem) -> str:
        return problem.question

    def extract(self, text: str) -> str | None:
        return normalise(text) or None

    def grade(self, problem: Problem, answer: str | None) -> bool | None:
        return None if problem.reference is None else answer is not None and recalled_exactly(answer, problem.reference)


def _metadata(item: MemoryItem) -> dict:
    return {"fields": dict(item.fields)} if item.fields else {}


@dataclass
class ItemPool:
    """The items of one study: the first `trained` are fine-tuned on (nested: a smaller N is a prefix), the last
    `control` never are."""

    items: list[MemoryItem]
    control_count: int
    largest: int
    spaces: tuple[FieldSpace, ...] = field(default_factory=tuple)

    def trained(self, count: int) -> list[MemoryItem]:
        return self.items[:count]

    def control(self) -> list[MemoryItem]:
        return self.items[self.largest : self.largest + self.control_count]


def item_pool(source: str, largest: int, control: int, seed: int = 0, max_chars: int = 256) -> ItemPool:
    items = load_items(source, largest + control, seed, max_chars)
    return ItemPool(items, control, largest, DEFAULT_SPACES if source == "synthetic" else ())
