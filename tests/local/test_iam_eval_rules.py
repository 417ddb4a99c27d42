"""jit_local.iam_eval against a small reference model of the IAM User Guide's rules.

The model below is written from the guide's wording, not from the evaluator: it reads a
structured policy (operators as tuples, not names to parse), resolves variables with its own
scanner and matches globs with its own matcher. Hypothesis draws thousands of single-statement
policies and request contexts (deterministically: ``derandomize=True``, no example database)
and the evaluator's decision must equal the model's.

Rules the model encodes (IAM User Guide pages "IAM policy elements: Variables and tags",
"Condition operators", "Single-valued vs. multivalued context keys"):

* ``${key}`` is replaced "with values that come from the conditional context keys passed in
  the request", key names case-insensitive, in Version 2012-10-17 documents only; elsewhere
  "variables like ${aws:username} are treated as literal strings". ``${*}``, ``${?}``, ``${$}``
  are a literal ``*``, ``?``, ``$``.
* ``${key, 'default'}``: the default stands in when the key has no value.
* A variable with no value is null: "There is no equal or like value"; positive string and ARN
  operators do not match it, negated ones do; "the resource that includes a policy variable
  with no value will not match any resource".
* Variables only "in the Resource element, but only in the resource portion of the ARN" (after
  the fifth colon) and with "the string operators or the ARN operators"; "You can't use a
  multivalued condition key as a variable". "Multivalued context keys require a condition set
  operator." A policy breaking one of these cannot be judged: the evaluator fails closed (an
  Allow does not apply, a Deny applies).
* A missing key: positive operators false, negated true, ``...IfExists`` and ``ForAllValues``
  true, ``ForAnyValue`` false; ``Null`` tests presence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jit_local import iam_eval
from jit_local.iam_eval import Decision

EXAMPLES = 2500
DETERMINISTIC = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ACTION = "s3:GetObject"

# ----------------------------------------------------------------------------- the model


class Unjudged(Exception):
    """The policy breaks a documented rule: the evaluator must fail closed."""


@dataclass(frozen=True)
class Op:
    family: str  # "String", "StringIgnoreCase", "StringLike", "Arn", "Numeric", "Bool", "Null"
    negated: bool = False
    if_exists: bool = False
    qualifier: str | None = None  # "ForAnyValue" | "ForAllValues"

    @property
    def name(self) -> str:
        positive = {
            "String": "StringEquals",
            "StringIgnoreCase": "StringEqualsIgnoreCase",
            "StringLike": "StringLike",
            "Arn": "ArnLike",
            "Numeric": "NumericEquals",
            "Bool": "Bool",
            "Null": "Null",
        }[self.family]
        negative = {
            "String": "StringNotEquals",
            "StringIgnoreCase": "StringNotEqualsIgnoreCase",
            "StringLike": "StringNotLike",
            "Arn": "ArnNotLike",
            "Numeric": "NumericNotEquals",
        }
        text = negative[self.family] if self.negated else positive
        text += "IfExists" if self.if_exists else ""
        return f"{self.qualifier}:{text}" if self.qualifier else text


@dataclass(frozen=True)
class Case:
    effect: str
    version: str
    resource_element: str  # "Resource" | "NotResource"
    patterns: tuple[str, ...]
    conditions: tuple[tuple[Op, tuple[tuple[str, tuple[str, ...]], ...]], ...]
    resource: str
    context: dict[str, list[str]]

    def document(self) -> dict[str, Any]:
        block: dict[str, dict[str, list[str]]] = {}
        for op, keys in self.conditions:
            block[op.name] = {key: list(values) for key, values in keys}
        statement: dict[str, Any] = {
            "Effect": self.effect,
            "Action": ACTION,
            self.resource_element: list(self.patterns),
        }
        if block:
            statement["Condition"] = block
        return {"Version": self.version, "Statement": [statement]}


@dataclass
class Trace:
    """Which rules decided a case (to show the random cases reach each of them)."""

    rules: set[str] = field(default_factory=set)


# A token of a resolved policy value: ("lit", char), ("any",) for * or ("one",) for ?.
Token = tuple[str, ...]
NULL = None
MULTIVALUED = {"aws:tagkeys"}


def resolve(
    text: str, context: dict[str, list[str]], variables: bool, trace: Trace
) -> list[Token] | None:
    """The policy value as glob tokens, or NULL; Unjudged for a variable AWS does not allow."""
    tokens: list[Token] = []
    null = False
    position = 0
    while position < len(text):
        end = text.find("}", position)
        if variables and text.startswith("${", position) and end >= 0:
            body = text[position + 2 : end]
            position = end + 1
            if body.strip() in ("*", "?", "$"):
                tokens.append(("lit", body.strip()))
                continue
            name, comma, rest = body.partition(",")
            name = name.strip()
            default = None
            if comma:
                quoted = rest.strip()
                if len(quoted) < 2 or quoted[0] != "'" or quoted[-1] != "'" or "'" in quoted[1:-1]:
                    raise Unjudged("malformed default")
                default = quoted[1:-1]
            if not name or "'" in name:
                raise Unjudged("malformed variable")
            values = context.get(name.lower(), [])
            if name.lower() in MULTIVALUED or len(values) > 1:
                trace.rules.add("multivalued variable")
                raise Unjudged("multivalued variable")
            if values:
                tokens.extend(("lit", char) for char in values[0])
            elif default is not None:
                trace.rules.add("default")
                tokens.extend(("lit", char) for char in default)
            else:
                trace.rules.add("null variable")
                null = True
            continue
        char = text[position]
        tokens.append(("any",) if char == "*" else ("one",) if char == "?" else ("lit", char))
        position += 1
    return NULL if null else tokens


def glob(tokens: list[Token], value: str) -> bool:
    @cache
    def match(i: int, j: int) -> bool:
        if i == len(tokens):
            return j == len(value)
        token = tokens[i]
        if token[0] == "any":
            return match(i + 1, j) or (j < len(value) and match(i, j + 1))
        if j == len(value):
            return False
        if token[0] == "one" or token[1] == value[j]:
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


def literal(tokens: list[Token]) -> str:
    return "".join("*" if t[0] == "any" else "?" if t[0] == "one" else t[1] for t in tokens)


def arn_like(tokens: list[Token], arn: str) -> bool:
    """ "Each of the six colon-delimited components of the ARN is checked separately"."""
    parts: list[list[Token]] = [[]]
    for token in tokens:
        if token == ("lit", ":") and len(parts) < 6:
            parts.append([])
        else:
            parts[-1].append(token)
    values = arn.split(":", 5)
    return len(parts) == 6 and len(values) == 6 and all(map(glob, parts, values))


def compare(family: str, policy: Any, value: str) -> bool:
    if family == "String":
        return literal(policy) == value
    if family == "StringIgnoreCase":
        return literal(policy).casefold() == value.casefold()
    if family == "StringLike":
        return glob(policy, value)
    if family == "Arn":
        return arn_like(policy, value)
    if family == "Numeric":
        return float(value) == policy
    return value.lower() == policy  # Bool


def policy_value(
    op: Op, text: str, context: dict[str, list[str]], variables: bool, trace: Trace
) -> Any:
    if op.family in ("String", "StringIgnoreCase", "StringLike", "Arn"):
        return resolve(text, context, variables, trace)
    if variables and "${" in text:
        trace.rules.add("variable in another operator")
        raise Unjudged("variables only with string and ARN operators")
    if op.family == "Numeric":
        try:
            return float(text)
        except ValueError:
            raise Unjudged("not a number") from None
    if text.lower() not in ("true", "false"):
        raise Unjudged("not a boolean")
    return text.lower()


def clause(
    op: Op, key: str, texts: tuple[str, ...], case: Case, variables: bool, trace: Trace
) -> bool:
    wanted = [policy_value(op, text, case.context, variables, trace) for text in texts]
    actual = case.context.get(key.lower(), [])
    if op.family == "Null":
        return any((want == "true") == (not actual) for want in wanted)
    if op.qualifier is None and (key.lower() in MULTIVALUED or len(actual) > 1):
        trace.rules.add("single-valued operator on a multivalued key")
        raise Unjudged("Multivalued context keys require a condition set operator.")
    if not actual:
        if op.if_exists:
            trace.rules.add("IfExists on a missing key")
        return op.if_exists or op.qualifier == "ForAllValues" or (op.negated and not op.qualifier)
    # Positive: "at least one ... must match one of the values in your policy"; negated: "must
    # NOT match any of values"; a null value matches nothing.
    hits = [any(w is not NULL and compare(op.family, w, value) for w in wanted) for value in actual]
    outcomes = [hit != op.negated for hit in hits]
    return all(outcomes) if op.qualifier == "ForAllValues" else any(outcomes)


def resource_pattern_matches(pattern: str, case: Case, variables: bool, trace: Trace) -> bool:
    if variables and "${" in pattern:
        fifth_colon = [m.start() for m in re.finditer(":", pattern)][4:5]
        if not fifth_colon or pattern.index("${") < fifth_colon[0]:
            trace.rules.add("variable before the resource portion")
            raise Unjudged("variable before the fifth colon")
    tokens = resolve(pattern, case.context, variables, trace)
    return tokens is not NULL and glob(tokens, case.resource)


def reference(case: Case, trace: Trace) -> Decision:
    variables = case.version == "2012-10-17"
    effect = Decision.ALLOW if case.effect == "Allow" else Decision.DENY
    try:
        matched = [resource_pattern_matches(p, case, variables, trace) for p in case.patterns]
        if any(matched) != (case.resource_element == "Resource"):
            return Decision.NEUTRAL
        verdicts = [
            clause(op, key, texts, case, variables, trace)
            for op, keys in case.conditions
            for key, texts in keys
        ]
    except Unjudged:
        trace.rules.add(f"fail closed ({case.effect})")
        return Decision.DENY if effect is Decision.DENY else Decision.NEUTRAL
    return effect if all(verdicts) else Decision.NEUTRAL


# ----------------------------------------------------------------------------- random cases
# Strategies are built once: building them inside a composite dominates the run time.

WORDS = ["a", "b", "ab", ""]
ARNS = ["arn:aws:iam::1:user/a", "arn:aws:iam::1:role/a", "arn:aws:iam::2:user/b"]
# Policy spellings of the context keys ("Key names are case-insensitive").
STRING_KEYS = ["aws:username", "AWS:UserName", "aws:PrincipalTag/team", "s3:prefix", "aws:TagKeys"]
VARIABLE_KEYS = [*STRING_KEYS, "aws:PrincipalTag/missing"]

_NAME = st.sampled_from(VARIABLE_KEYS)
VARIABLE = st.one_of(
    _NAME.map(lambda n: f"${{{n}}}"),
    st.tuples(_NAME, st.sampled_from(["a", "b", ""])).map(lambda t: f"${{{t[0]}, '{t[1]}'}}"),
    st.sampled_from(["${*}", "${?}", "${$}", "${aws:username, b}", "${}"]),
)
STRING_VALUE = st.lists(
    st.one_of(st.sampled_from(["a", "b", "*", "?", "$", "x-"]), VARIABLE), min_size=1, max_size=3
).map("".join)
ARN_VALUE = st.one_of(
    st.sampled_from([*ARNS, "arn:aws:iam::*:user/*", "arn:aws:iam::1:*"]),
    VARIABLE.map(lambda v: f"arn:aws:iam::1:user/{v}"),
    VARIABLE.map(lambda v: f"arn:aws:iam::{v}:user/a"),
)


def _keys_with_values(keys: list[str], value: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    one_key = st.tuples(st.sampled_from(keys), st.lists(value, min_size=1, max_size=3).map(tuple))
    return st.lists(one_key, min_size=1, max_size=2, unique_by=lambda kv: kv[0]).map(tuple)


KEYS_WITH_VALUES = {
    "Numeric": _keys_with_values(
        ["s3:max-keys"], st.one_of(st.sampled_from(["1", "2", "1.0", "ten"]), VARIABLE)
    ),
    "Bool": _keys_with_values(
        ["aws:SecureTransport"],
        st.one_of(st.sampled_from(["true", "false", "TRUE", "yes"]), VARIABLE),
    ),
    "Null": _keys_with_values(
        [*STRING_KEYS, "s3:max-keys"], st.one_of(st.sampled_from(["true", "false"]), VARIABLE)
    ),
    "Arn": _keys_with_values(["aws:PrincipalArn"], ARN_VALUE),
    "String": _keys_with_values(STRING_KEYS, STRING_VALUE),
}
_OPERATORS = {
    family: st.builds(
        Op,
        family=st.just(family),
        negated=st.booleans(),
        if_exists=st.booleans(),
        qualifier=st.sampled_from([None, None, "ForAnyValue", "ForAllValues"]),
    )
    for family in ("String", "StringIgnoreCase", "StringLike", "Arn", "Numeric")
}
_OPERATORS["Bool"] = st.builds(Op, family=st.just("Bool"), if_exists=st.booleans())
_OPERATORS["Null"] = st.just(Op("Null"))
CONDITION = st.one_of(
    *(
        st.tuples(operators, KEYS_WITH_VALUES.get(family, KEYS_WITH_VALUES["String"]))
        for family, operators in _OPERATORS.items()
    )
)


def _context_key(key: str, choices: list[str], most: int) -> st.SearchStrategy[Any]:
    value = st.sampled_from(choices)
    several = st.lists(value, min_size=most, max_size=most)
    return st.one_of(st.just([]), value.map(lambda v: [v]), several).map(lambda v: (key, v))


CONTEXT = st.tuples(
    _context_key("aws:username", WORDS, 2),
    _context_key("aws:principaltag/team", WORDS, 2),
    _context_key("s3:prefix", WORDS, 2),
    _context_key("aws:tagkeys", WORDS, 3),
    _context_key("s3:max-keys", ["1", "2"], 1),
    _context_key("aws:securetransport", ["true", "false"], 1),
    _context_key("aws:principalarn", ARNS, 2),
).map(lambda pairs: {key: values for key, values in pairs if values})
RESOURCE_PATTERN = st.one_of(
    STRING_VALUE.map(lambda v: f"arn:aws:s3:::bkt/{v}"),
    STRING_VALUE.map(lambda v: f"arn:aws:s3:::bkt/{v}"),
    st.sampled_from(["arn:aws:s3:::bkt/*", "*", "arn:aws:s3:::other/*"]),
    # Rarer: a variable before the resource portion (the first two) fails a case closed.
    st.sampled_from(["arn:aws:${aws:username}:::bkt/a", "${s3:prefix}", "arn:aws:s3:::${*}"]),
)


def _unique_operators(conditions: list[Any]) -> tuple[Any, ...]:
    """A JSON object holds one entry per operator name: the last drawn wins."""
    return tuple({op.name: (op, keys) for op, keys in conditions}.values())


CASES = st.builds(
    Case,
    effect=st.sampled_from(["Allow", "Deny"]),
    version=st.sampled_from(["2012-10-17", "2012-10-17", "2012-10-17", "2008-10-17"]),
    resource_element=st.sampled_from(["Resource", "Resource", "NotResource"]),
    patterns=st.lists(RESOURCE_PATTERN, min_size=1, max_size=2).map(tuple),
    conditions=st.lists(CONDITION, max_size=2).map(_unique_operators),
    resource=st.sampled_from(["a", "ab", "b", "x-a", "$"]).map(lambda r: f"arn:aws:s3:::bkt/{r}"),
    context=CONTEXT,
)


# ----------------------------------------------------------------------------- the tests


RULES = {
    "default",
    "null variable",
    "multivalued variable",
    "variable in another operator",
    "variable before the resource portion",
    "single-valued operator on a multivalued key",
    "IfExists on a missing key",
    "fail closed (Allow)",
    "fail closed (Deny)",
}


def test_evaluator_decides_as_the_reference_model_on_cases_reaching_every_rule() -> None:
    """Thousands of random single-statement policies get the model's decision, and every rule
    above comes into play in some of them (else the agreement would prove little)."""
    reached: set[str] = set()

    @DETERMINISTIC
    @given(CASES)
    def agree(case: Case) -> None:
        trace = Trace()
        expected = reference(case, trace)
        reached.update(trace.rules)
        decision = iam_eval.evaluate([case.document()], ACTION, case.resource, case.context)
        assert decision is expected, case.document()

    agree()
    assert reached >= RULES, RULES - reached
