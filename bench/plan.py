"""How much each benchmark does: the full run (``make bench``) and the smoke run (``--smoke``)."""

from __future__ import annotations

from dataclasses import dataclass

GOALS = {  # figure: (comparison, bound, and the side it bounds when not the figure's value)
    "B1": (">=", 0.80, None),
    "B1L": (">=", 0.95, None),
    **{f"B1L {route}": (">=", 0.95, None) for route in ("v2", "lhc", "chatbot")},
    "B1N": (">=", 1.5, None),
    "B2": ("<=", 1.5, None),
    "B3": (">=", 0.60, None),
    "B3T": (">=", 0.90, None),
    "B4": (">=", 1.6, None),
    "B6": ("<=", 50.0, "chatbot p99 ms"),
}


@dataclass(frozen=True)
class Plan:
    name: str
    rounds: int
    trigger_rounds: int  # B3T's two sides, a ratio of two close figures: many short runs, alternating
    trigger_chats: int  # B3T: conversations per run
    web_workers: int  # gunicorn sync workers, both servers
    worker_concurrency: int  # Celery prefork processes for B3 (and B4's larger side)
    connections: int  # load generator connections, both servers
    seconds: float  # each timed load
    warmup_seconds: float
    paced_share: float  # B2's fixed rate, as a share of the ingress's median saturated throughput
    paced_connections: int  # B2: the most requests in flight at once
    pipeline_chats: int  # B3/B4: conversations per run
    messages_per_chat: int
    memory_chats: int  # B5
    memory_messages: int
    chat_ttl: int  # B5's CHATHOOKS_CHAT_TTL and CHATHOOKS_DEDUPE_TTL
    ended_ttl: int  # B5's CHATHOOKS_ENDED_CHAT_TTL and CHATHOOKS_STATE_DEDUPE_TTL
    chatbot_rate: float  # B6: ChatBot calls per second, both servers


FULL = Plan(
    name="full", rounds=3, trigger_rounds=15, trigger_chats=100, web_workers=2, worker_concurrency=2, connections=8,
    seconds=8, warmup_seconds=2,
    paced_share=0.4, paced_connections=16, pipeline_chats=300, messages_per_chat=8,
    memory_chats=500, memory_messages=3, chat_ttl=20, ended_ttl=5, chatbot_rate=200,
)

SMOKE = Plan(
    name="smoke", rounds=1, trigger_rounds=1, trigger_chats=3, web_workers=2, worker_concurrency=2, connections=4,
    seconds=1, warmup_seconds=1,
    paced_share=0.4, paced_connections=4, pipeline_chats=3, messages_per_chat=2,
    memory_chats=3, memory_messages=1, chat_ttl=3, ended_ttl=2, chatbot_rate=20,
)
