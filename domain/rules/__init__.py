"""The rules of RULES.md as pure code (规则引擎): judge a case's events, produce findings.

    facts = CaseFacts.empty()                    # or CaseFacts.fold(history)
    judgement = judge(facts, None, event)        # before the event is appended
    extra = derived_events(event, judgement)     # FindingRecorded / FindingResolved to append
    facts.apply(seq, event); facts.apply(seq_i, e_i) for each of extra

No I/O, no clock: the rule set in force comes from the event's own occurred-at time.
"""

from domain.rules.engine import RULE_IDS, RULES, Judgement, derived_events, judge
from domain.rules.facts import CaseFacts
from domain.rules.ruleset import RULE_SETS, NoRuleSet, RuleSet, ruleset_at, ruleset_named

__all__ = [
    "RULES",
    "RULE_IDS",
    "RULE_SETS",
    "CaseFacts",
    "Judgement",
    "NoRuleSet",
    "RuleSet",
    "derived_events",
    "judge",
    "ruleset_at",
    "ruleset_named",
]
