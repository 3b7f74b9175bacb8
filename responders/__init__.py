"""Reply drafting: a draft in the customer's language and the market's register, per mention."""

from responders.drafter import DraftDecision, ReplyDrafter

__all__ = ["DraftDecision", "ReplyDrafter"]
