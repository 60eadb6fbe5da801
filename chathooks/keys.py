"""Every Redis key the pipeline owns, in one place, under one configurable prefix."""

from __future__ import annotations


class Keys:
    """Key names under ``prefix`` (tests use their own prefix and clean up only that)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.metrics = f"{prefix}metrics"
        self.observed = f"{prefix}metrics:observed"  # histograms and labelled counters (chathooks.observed)
        self.dead_letters = f"{prefix}dlq:index"  # item id → time dead-lettered (what /metrics counts)
        self.dead_letter_items = f"{prefix}dlq:items"
        self.outbound = f"{prefix}outbound"  # the record of what the automations did
        self.schedule = f"{prefix}schedule"  # delayed jobs by due time (workers.scheduler)

    def dedupe(self, delivery_id: str) -> str:
        return f"{self.prefix}dedupe:{delivery_id}"

    def timeline(self, chat_id: str) -> str:
        return f"{self.prefix}timeline:{chat_id}"

    def thread(self, thread_id: str, part: str) -> str:
        """What the workers keep of a thread (``workers.state``): its tag sets and its ``ended`` marker."""
        return f"{self.prefix}thread:{thread_id}:{part}"

    # Customer profiles (chathooks.profiles): by lowercase email, by the platform's customer id, and a chat's link.
    def profile_email(self, email: str) -> str:
        return f"{self.prefix}profile:email:{email}"

    def profile_customer(self, customer_id: str) -> str:
        return f"{self.prefix}profile:customer:{customer_id}"

    def profile_chat(self, source: str, chat_id: str) -> str:
        return f"{self.prefix}profile:chat:{source}:{chat_id}"
