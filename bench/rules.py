"""Rules files for B3's trigger sides: the default rules without any trigger, and with 20 of them.

The 20 mix what users write: words in the last customer message, clocks that schedule a moment,
messages in a row, counts, ``expr`` arithmetic, tags, platform attributes, once and window.
Several fire on the benchmark's conversations (dry-run: recorded, not sent).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

WORDS = (["refund", "money back"], ["charged twice"], ["order"], ["update", "any news"], ["jacket", "size"])


def _triggers() -> list[dict[str, Any]]:
    def trigger(name: str, when: Any, action: dict[str, str], repeat: str = "window") -> dict[str, Any]:
        return {"name": name, "when": when, "actions": [action], "repeat": repeat}

    triggers = [trigger(f"words-{i}", [{"field": "customer_message_text", "op": "contains_any", "value": words},
                                       {"field": "seconds_since_customer_message", "op": "gte", "value": 30 + i}],
                        {"message": f"About {words[0]}: an agent will be right with you."})
                for i, words in enumerate(WORDS)]
    triggers += [trigger(f"silence-{s}", [{"field": "last_message_author", "op": "eq", "value": "customer"},
                                          {"field": "seconds_since_customer_message", "op": "gte", "value": s}],
                         {"tag": f"silent-{s}"}) for s in (60, 120, 300)]
    triggers += [trigger(f"in-a-row-{n}", [{"field": "customer_messages_in_a_row", "op": "gte", "value": n}],
                         {"message": f"{n} messages: someone is on the way."}) for n in (2, 3, 5)]
    triggers += [
        trigger("busy", [{"field": "messages", "op": "gte", "value": 6}], {"tag": "busy"}, "once"),
        trigger("long-chat", [{"expr": "seconds_since_start > 1.5 * 600"}], {"tag": "long-chat"}),
        trigger("agent-quiet", [{"expr": "seconds_since_agent_message - seconds_since_customer_message > 90"}],
                {"tag": "agent-quiet"}),
        trigger("refund-tagged", [{"field": "tags", "op": "contains", "value": "refund"},
                                  {"field": "status", "op": "eq", "value": "ended"}], {"tag": "refund-closed"}),
        trigger("vip", {"any": [[{"field": "customer_email", "op": "contains", "value": "vip"}],
                                [{"field": "attributes.priority", "op": "gte", "value": 5}]]},
                {"message": "Welcome back!"}, "once"),
        trigger("bad-rating", [{"field": "rating", "op": "eq", "value": 0}], {"tag": "unhappy"}),
        trigger("late-hours", [{"expr": "now - attributes.pnd_time > 600"}], {"tag": "waited"}),
        trigger("ended-short", [{"field": "status", "op": "eq", "value": "ended"},
                                {"field": "messages", "op": "lt", "value": 3}], {"tag": "short"}),
        trigger("source-lhc", [{"field": "source", "op": "eq", "value": "lhc"},
                               {"field": "customer_messages_in_a_row", "op": "gte", "value": 4}], {"tag": "lhc-busy"}),
    ]
    assert len(triggers) == 20
    return triggers


def write_rules(directory: Path) -> dict[str, Path]:
    """The two rules files, by side: ``no-triggers`` (no nudge either) and ``triggers``."""
    base = yaml.safe_load(files("chathooks").joinpath("default_rules.yaml").read_text(encoding="utf-8"))
    base.pop("nudge", None)  # the nudge is a trigger too
    paths = {"no-triggers": directory / "rules-no-triggers.json", "triggers": directory / "rules-20-triggers.json"}
    paths["no-triggers"].write_text(json.dumps(base))
    paths["triggers"].write_text(json.dumps({**base, "triggers": _triggers()}))
    return paths
