"""Vocabularies shared by config, storage and every stage."""

from enum import IntEnum, StrEnum


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Urgency(IntEnum):
    """Ordered so that rules can say "at least high"."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: "str | int | Urgency") -> "Urgency":
        if isinstance(value, cls):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).upper()]
        except KeyError:
            choices = ", ".join(u.label for u in cls)
            raise ValueError(f"unknown urgency {value!r}; use one of: {choices}") from None


class Intent(StrEnum):
    DELIVERY = "delivery"
    REFUND_RETURN = "refund_return"
    DAMAGED_DEFECTIVE = "damaged_defective"
    BILLING_PAYMENT = "billing_payment"
    ACCOUNT_SECURITY = "account_security"
    SAFETY = "safety"
    LEGAL = "legal"
    QUESTION = "question"
    PRAISE = "praise"
    OTHER = "other"


class Formality(StrEnum):
    FORMAL = "formal"
    INFORMAL = "informal"


class DraftStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"
    SENT = "sent"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # never sent: a later alert about its mention went out first
    DROPPED = "dropped"  # never sent: an operator dropped it (`listener outbox drop`)
