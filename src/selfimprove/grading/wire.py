"""Plain data across the pipe between the judge and a sandboxed program: framing, encoder, strict decoder.

Standard library only and no package-relative imports: it is imported as `selfimprove.grading.wire`
by the judge and copied beside `sandbox_child.py` into each sandbox, where it is imported as `wire`.

A message is an 8-byte big-endian length and that many bytes of ASCII JSON. A value is JSON
`null`, `true`, `false` or a string for None, bool and str; every other value is a list whose
first item names its type:

    ["i", hex] int       ["f", hex] float      ["c", hex, hex] complex    ["y", hex] bytes
    ["ba", hex] bytearray   ["l", ...] list   ["t", ...] tuple   ["s", ...] set
    ["fs", ...] frozenset      ["d", k1, v1, k2, v2, ...] dict
    ["bt", name] a built-in type (int, str, ValueError...), as `isinstance` tests pass them

The decoder trusts nothing it reads: it accepts only these shapes, exact JSON types, a bounded
depth and a bounded message size, and it builds new objects of the built-in types, so whatever the
other side sends, the judge holds genuine ints, strings and lists that compare as built-ins do.
"""

import builtins
import json
import os
import select
import time

HEADER_BYTES = 8
MAX_DEPTH = 64
_SEQUENCES = {"l": list, "t": tuple, "s": set, "fs": frozenset}


class WireError(Exception):
    """A message that breaks the protocol: malformed, too deep, too large, or cut off."""


class Unsendable(Exception):
    """A value that is not plain data, so it cannot cross."""

    def __init__(self, kind):
        super().__init__(f"a value of type {kind} is not plain data")
        self.kind = kind


class ChannelClosed(Exception):
    """The other side closed its end (it ended, or closed the pipe)."""


class ChannelTimeout(Exception):
    """No whole message arrived in time."""


def encode(value, depth=0, strict=True):
    """`value` as JSON-ready data. Strict (the judge's side): only the exact built-in types.
    Not strict (the program's side): subclasses of them (namedtuple, Counter, OrderedDict) are sent as
    their base type, as they would compare in-process."""
    if depth > MAX_DEPTH:
        raise Unsendable(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return ["i", hex(value)]
    if kind is float:
        return ["f", value.hex()]
    if kind is complex:
        return ["c", value.real.hex(), value.imag.hex()]
    if kind is bytes:
        return ["y", value.hex()]
    if kind is bytearray:
        return ["ba", value.hex()]
    for tag, sequence in _SEQUENCES.items():
        if kind is sequence:
            return [tag, *(encode(item, depth + 1, strict) for item in value)]
    if kind is type and getattr(builtins, value.__name__, None) is value:
        return ["bt", value.__name__]
    if kind is dict:
        items = ["d"]
        for key, item in value.items():
            items.append(encode(key, depth + 1, strict))
            items.append(encode(item, depth + 1, strict))
        return items
    if not strict:
        for base in (bool, int, float, complex, str, bytes, bytearray, list, tuple, set, frozenset, dict):
            if isinstance(value, base):
                return encode(_as_base(value, base), depth, strict)
    raise Unsendable(kind.__qualname__)


def _as_base(value, base):
    if base is dict:
        return dict(dict.items(value))
    if base in (list, tuple, set, frozenset):
        return base(base.__iter__(value))
    return base(value)


def decode(data, depth=0):
    """A new built-in value from what `encode` made; anything else raises WireError."""
    if depth > MAX_DEPTH:
        raise WireError(f"a value nested deeper than {MAX_DEPTH}")
    if data is None or type(data) is bool or type(data) is str:
        return data
    if type(data) is not list or not data or type(data[0]) is not str:
        raise WireError(f"not an encoded value: {type(data).__name__}")
    tag, rest = data[0], data[1:]
    try:
        if tag in _SEQUENCES:
            return _SEQUENCES[tag](decode(item, depth + 1) for item in rest)
        if tag == "d":
            if len(rest) % 2:
                raise WireError("a dict with an odd number of items")
            return {decode(rest[i], depth + 1): decode(rest[i + 1], depth + 1) for i in range(0, len(rest), 2)}
        if tag == "i" and _strings(rest, 1):
            return int(rest[0], 16)
        if tag == "f" and _strings(rest, 1):
            return float.fromhex(rest[0])
        if tag == "c" and _strings(rest, 2):
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if tag == "bt" and _strings(rest, 1) and isinstance(getattr(builtins, rest[0], None), type):
            return getattr(builtins, rest[0])
        if tag in ("y", "ba") and _strings(rest, 1):
            return bytes.fromhex(rest[0]) if tag == "y" else bytearray.fromhex(rest[0])
    except (ValueError, TypeError, OverflowError) as exc:  # unhashable keys, bad digits
        raise WireError(f"a malformed {tag!r} value: {exc}") from None
    raise WireError(f"an unknown or malformed value tag {tag!r}")


def _strings(items, count):
    return len(items) == count and all(type(item) is str for item in items)


def dumps(message):
    body = json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    return len(body).to_bytes(HEADER_BYTES, "big") + body


class Channel:
    """One direction in, one out, over raw file descriptors; reads are bounded in size and time."""

    def __init__(self, read_fd, write_fd, max_bytes):
        self.read_fd, self.write_fd, self.max_bytes = read_fd, write_fd, max_bytes

    def send(self, message):
        data = dumps(message)
        if len(data) - HEADER_BYTES > self.max_bytes:
            raise Unsendable(f"a message of {len(data)} bytes (the limit is {self.max_bytes})")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.write_fd, view)
            except BrokenPipeError:
                raise ChannelClosed("the other side closed the pipe") from None
            view = view[written:]

    def receive(self, timeout=None):
        """The next message as parsed JSON (not yet decoded values); `timeout` seconds for all of it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        size = int.from_bytes(self._read_exactly(HEADER_BYTES, deadline), "big")
        if size > self.max_bytes:
            raise WireError(f"a message of {size} bytes (the limit is {self.max_bytes})")
        body = self._read_exactly(size, deadline)
        try:
            return json.loads(body.decode("ascii"))
        except (ValueError, RecursionError) as exc:
            raise WireError(f"a message that is not JSON: {str(exc)[:80]}") from None

    def _read_exactly(self, count, deadline):
        chunks, missing = [], count
        while missing:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                    raise ChannelTimeout()
            chunk = os.read(self.read_fd, min(missing, 1 << 20))
            if not chunk:
                raise ChannelClosed("the other side closed the pipe")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)
