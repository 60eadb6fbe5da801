"""``{{namespace.name}}`` templates of the rules' ``chatbot`` answers, compiled once at start.

Names: ``customer.<field>`` (the profile's fields only), ``user.email`` / ``user.name``
(``userAttributes.default_email`` / ``default_name``), ``user.<key>`` (any other userAttributes key)
and ``attributes.<key>`` (the request's attributes). Every value renders as a string: booleans
``true``/``false``, numbers in decimal, a missing value empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chathooks.profiles import FIELDS

_SLOT = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"(customer|user|attributes)\.([A-Za-z0-9_\-.]+)")
USER_ALIASES = {"email": "default_email", "name": "default_name"}


class TemplateError(ValueError):
    """A template (or condition) naming something that does not exist."""


def check_name(name: str) -> tuple[str, str]:
    """``(namespace, key)`` of a template name; TemplateError for an unknown one."""
    found = _NAME.fullmatch(name)
    if found is None:
        raise TemplateError(f"unknown template name {name!r} (customer.<field>, user.<key> or attributes.<key>)")
    namespace, key = found.groups()
    if namespace == "customer" and key not in FIELDS:
        raise TemplateError(f"unknown template name {name!r}: the profile's fields are {', '.join(FIELDS)}")
    if namespace == "user":
        key = USER_ALIASES.get(key, key)
    return namespace, key


def text(value: Any) -> str:
    """How a value renders: booleans true/false, numbers in decimal, nothing as empty, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Context:
    """What templates are filled from: the profile (as text), the request's userAttributes and attributes."""

    customer: Mapping[str, str]
    user: Mapping[str, Any]
    attributes: Mapping[str, Any]

    def value(self, namespace: str, key: str) -> str:
        source = {"customer": self.customer, "user": self.user, "attributes": self.attributes}[namespace]
        return text(source.get(key))


@dataclass(frozen=True)
class Template:
    """A string with ``{{…}}`` slots; ``url`` quotes what fills them (the literal parts are the rule's)."""

    parts: tuple[str | tuple[str, str], ...]
    url: bool = False

    @classmethod
    def compile(cls, source: str, url: bool = False) -> Template:
        parts: list[str | tuple[str, str]] = []
        position = 0
        for found in _SLOT.finditer(source):
            parts.append(source[position:found.start()])
            parts.append(check_name(found[1]))
            position = found.end()
        parts.append(source[position:])
        literal = "".join(p for p in parts if isinstance(p, str))
        if "{{" in literal or "}}" in literal:
            raise TemplateError(f"unbalanced braces in {source!r}")
        return cls(tuple(p for p in parts if p != ""), url)

    @property
    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, context: Context) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = context.value(*part)
                out.append(quote(value, safe="") if self.url else value)
        return "".join(out)
