"""Terraform addresses and references, tokenized: `module.m["a.b"].aws_s3_bucket.b[0].id` into its steps.

An address is a dot-separated sequence of names, each optionally followed by an index in brackets: an integer
(`count`), a quoted string (`for_each`, with HCL escapes: `\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\uXXXX`,
`\\UXXXXXXXX`) or `*` (a splat). A for_each key may contain any character, `]`, `"` and `.` included, so nothing here
splits on those characters: the text is read one token at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

Key = int | str | None
"""An instance key: a count index, a for_each key, or None (no key, or a splat)."""

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class AddressError(ValueError):
    """Text that is not a Terraform address or reference."""


@dataclass(frozen=True)
class Step:
    name: str
    key: Key = None
    indexed: bool = False
    """Whether the step had brackets (`b[0]`, `b["x"]`, `b[*]`), as opposed to `b`."""


def tokenize(text: str) -> tuple[Step, ...]:
    """The steps of an address or reference; raises AddressError on malformed text."""
    steps: list[Step] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and (text[i].isalnum() or text[i] in "_-"):
            i += 1
        if i == start:
            raise AddressError(f"{text!r}: expected a name at offset {i}")
        name = text[start:i]
        key: Key = None
        indexed = False
        if i < n and text[i] == "[":
            key, i = _index(text, i + 1)
            indexed = True
        steps.append(Step(name, key, indexed))
        if i < n:
            if text[i] != ".":
                raise AddressError(f"{text!r}: expected '.' or '[' at offset {i}")
            i += 1
            if i == n:
                raise AddressError(f"{text!r}: ends with '.'")
    if not steps:
        raise AddressError("empty address")
    return tuple(steps)


def _index(text: str, i: int) -> tuple[Key, int]:
    """The key starting at `i` (just after `[`) and the offset after its `]`."""
    n = len(text)
    if i < n and text[i] == '"':
        i += 1
        chars: list[str] = []
        while True:
            if i >= n:
                raise AddressError(f"{text!r}: unterminated string key")
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                if i + 1 >= n:
                    raise AddressError(f"{text!r}: unterminated escape")
                e = text[i + 1]
                if e in _ESCAPES:
                    chars.append(_ESCAPES[e])
                    i += 2
                elif e in "uU":
                    width = 4 if e == "u" else 8
                    digits = text[i + 2 : i + 2 + width]
                    if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                        raise AddressError(f"{text!r}: bad \\{e} escape")
                    chars.append(chr(int(digits, 16)))
                    i += 2 + width
                else:
                    raise AddressError(f"{text!r}: unknown escape \\{e}")
                continue
            chars.append(c)
            i += 1
        key: Key = "".join(chars)
    elif i < n and text[i] == "*":
        key, i = None, i + 1
    else:
        start = i
        while i < n and text[i].isdigit():
            i += 1
        if i == start:
            raise AddressError(f"{text!r}: expected a number, a quoted key or '*' at offset {i}")
        key = int(text[start:i])
    if i >= n or text[i] != "]":
        raise AddressError(f"{text!r}: expected ']' at offset {i}")
    return key, i + 1


ModulePath = tuple[tuple[str, Key], ...]
"""Module instance path: (call name, instance key) from the root down."""


@dataclass(frozen=True)
class Address:
    """A resource (instance) address, plus the attribute path a reference may continue with."""

    module: ModulePath
    mode: str
    """`managed` or `data`."""
    type: str
    name: str
    key: Key
    keyed: bool
    """Whether the reference named an instance (`b[0]`) rather than the resource (`b`)."""
    rest: tuple[Step, ...] = ()

    @property
    def module_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.module)

    @property
    def config(self) -> tuple[tuple[str, ...], str, str, str]:
        """The configuration address: module names, mode, type, name (no instance keys)."""
        return self.module_names, self.mode, self.type, self.name


def parse_address(text: str) -> Address:
    """A resource instance address (`module.m[0].aws_x.y["k"]`); raises AddressError if it names none."""
    steps = tokenize(text)
    module: list[tuple[str, Key]] = []
    i = 0
    while i < len(steps) and steps[i].name == "module" and not steps[i].indexed:
        if i + 1 >= len(steps):
            raise AddressError(f"{text!r}: `module` without a name")
        module.append((steps[i + 1].name, steps[i + 1].key))
        i += 2
    mode = "managed"
    if i < len(steps) and steps[i].name == "data" and not steps[i].indexed:
        mode = "data"
        i += 1
    if i + 1 >= len(steps) or steps[i].indexed:
        raise AddressError(f"{text!r}: not a resource address")
    resource = steps[i + 1]
    return Address(tuple(module), mode, steps[i].name, resource.name, resource.key, resource.indexed, steps[i + 2 :])


def format_key(key: Key) -> str:
    if key is None:
        return ""
    if isinstance(key, int):
        return f"[{key}]"
    escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '["' + escaped.replace("\t", "\\t") + '"]'
