"""MQTT 3.1.1 / 5 topic filters (spec section 4.7 examples), the TopicRouter,
filter coverage and the minimal subscription set."""

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ...parsers.topic_filter import (
    TopicRouter,
    filter_covers,
    minimal_filters,
    topic_matches,
    validate_filter,
    validate_topic,
)

MATCHES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/tennis/player1/#", "sport/tennis/player2", False),
    ("sport/#", "sport", True),
    ("sport/#", "sports", False),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("sport/+/player1", "sport/tennis/player1", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+", "finance", True),
    ("+/tennis/#", "sport/tennis", True),
    ("+/tennis/#", "sport/golf", False),
    ("#", "$SYS/monitor/Clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("a/$SYS/+", "a/$SYS/x", True),
    ("+/$x", "a/$x", True),
    ("ACCOUNTS", "Accounts", False),
    ("Accounts", "Accounts", True),
    ("a/b", "a/b/", False),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
    ("shelly/ug/+/status/+", "shelly/ug/saw/status/pm1:0", True),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCHES)
def test_spec_examples(topic_filter, topic, expected):
    validate_filter(topic_filter)
    validate_topic(topic)
    assert topic_matches(topic_filter, topic) is expected
    router = TopicRouter()
    router.add(topic_filter, "v")
    assert router.match(topic) == (["v"] if expected else [])


@pytest.mark.parametrize(
    ("topic_filter", "reason"),
    [
        ("", "must not be empty"),
        ("sport/tennis#", "'#' must occupy a whole level"),
        ("sport/tennis/#/ranking", "'#' must be the last level"),
        ("#/a", "'#' must be the last level"),
        ("##", "'#' must occupy a whole level"),
        ("sport+", "'+' must occupy a whole level"),
        ("a/+b/c", "'+' must occupy a whole level"),
        ("a/\x00", "NUL"),
        ("a" * 65536, "65536 bytes long, the maximum is 65535"),
        ("\u00e4" * 32768, "65536 bytes long"),
        ("a/\ud800", "not valid UTF-8"),
        (None, "must be a string"),
    ],
)
def test_invalid_filters(topic_filter, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        validate_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", ["#", "+", "/", "+/+", "a/#", "$SYS/#", " "])
def test_valid_filters(topic_filter):
    validate_filter(topic_filter)


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "#", "+", "a\x00", "x" * 65536, 5])
def test_invalid_topic_names(topic):
    with pytest.raises(ValueError):
        validate_topic(topic)


@pytest.mark.parametrize("topic", ["/", "a//b", "$SYS/x", " ", "a" * 65535])
def test_valid_topic_names(topic):
    validate_topic(topic)


def test_router_add_remove_match_and_order():
    router = TopicRouter()
    router.add("a/b", 1)
    router.add("a/+", 2)
    router.add("a/#", 3)
    router.add("#", 1)  # 1 again through another filter: listed once
    router.add("a/b", 1)  # duplicate pair: no-op
    assert len(router) == 4
    assert router.match("a/b") == [1, 2, 3]
    assert router.match("a") == [3, 1]
    assert router.match("$SYS/a") == []
    assert router.remove("a/b", 1) is True
    assert router.match("a/b") == [2, 3, 1]
    assert router.remove("a/b", 1) is False
    assert router.remove("a/+", 99) is False
    assert router.remove("x/+/y", 2) is False
    assert router.remove("a/+", 2) and router.remove("a/#", 3) and router.remove("#", 1)
    assert len(router) == 0 and router.match("a/b") == []
    assert router._root.empty()  # pruned: removed devices leave no nodes behind


def test_router_clear_and_exact_only():
    router = TopicRouter()
    for index in range(3):
        router.add(f"dev{index}/online", index)
    assert router.match("dev1/online") == [1]
    router.clear()
    assert len(router) == 0 and router.match("dev1/online") == []


def test_router_rejects_invalid_filters():
    with pytest.raises(ValueError):
        TopicRouter().add("a/#/b", 1)


def test_router_with_many_devices():
    router = TopicRouter()
    for index in range(1000):
        prefix = f"shelly/hall{index % 7}/dev{index}"
        for topic_filter in (
            f"{prefix}/events/rpc",
            f"{prefix}/status/+",
            f"{prefix}/online",
        ):
            router.add(topic_filter, index)
    assert len(router) == 3000
    assert router.match("shelly/hall3/dev500/status/pm1:0") == [500]
    assert router.match("shelly/hall3/dev500/events/rpc") == [500]
    assert router.match("shelly/hall3/dev500/status") == []
    assert router.match("shelly/hall4/dev500/online") == []


# -- properties: the router agrees with topic_matches, which agrees with a regex --


def reference(topic_filter, topic):
    """Independent oracle: the filter as a regular expression."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    if topic_filter == "#":
        return True
    pattern = re.escape(topic_filter).replace(r"\+", "[^/]*")
    if pattern.endswith("/\\#"):
        pattern = pattern[: -len("/\\#")] + "(/.*)?"
    return re.fullmatch(pattern, topic, re.DOTALL) is not None


LEVEL = st.sampled_from(["a", "b", "A", "", "$SYS", "$", "c d", "ä"])
TOPICS = st.lists(LEVEL, min_size=1, max_size=5).map("/".join)
FILTERS = st.builds(
    lambda levels, tail: "/".join(levels + tail),
    st.lists(st.one_of(LEVEL, st.just("+")), min_size=0, max_size=4),
    st.sampled_from([[], ["#"], ["+"]]),
).filter(bool)


@settings(max_examples=400, deadline=None)
@given(FILTERS, TOPICS)
def test_topic_matches_agrees_with_regex_oracle(topic_filter, topic):
    validate_filter(topic_filter)
    assert topic_matches(topic_filter, topic) is reference(topic_filter, topic)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), FILTERS, st.integers(0, 5)), min_size=1, max_size=25
    ),
    st.lists(TOPICS, min_size=1, max_size=5),
)
def test_router_agrees_with_topic_matches(operations, topics):
    router = TopicRouter()
    model = []  # registered (filter, value) pairs in the order they were added
    for is_add, topic_filter, value in operations:
        pair = (topic_filter, value)
        if is_add:
            router.add(topic_filter, value)
            if pair not in model:
                model.append(pair)
        else:
            assert router.remove(topic_filter, value) is (pair in model)
            if pair in model:
                model.remove(pair)
    assert len(router) == len(model)
    for topic in topics:
        # The most specific filter first: the topic itself, then "+" only,
        # then "#" (a deeper one first); equals in the order they came.
        best = {}
        for index, (topic_filter, value) in enumerate(model):
            if topic_matches(topic_filter, topic):
                key = (specificity(topic_filter, topic), index)
                best[value] = min(best.get(value, key), key)
        expected = sorted(best, key=best.__getitem__)
        assert router.match(topic) == expected


def specificity(topic_filter, topic):
    """0 for the topic itself, 1 for "+" filters, then "#" ones by depth."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return 0
    if not topic_filter.endswith("#"):
        return 1
    depth = len(topic_filter.split("/")) - 1
    return 2 + len(topic.split("/")) - depth


# -- filter coverage and the minimal subscription set ---------------------------

COVERS = [
    ("a/#", "a", True),  # "#" also matches the parent level
    ("a/#", "a/b/c", True),
    ("a/#", "a/#", True),
    ("a/#", "a/+/#", True),
    ("a/+/#", "a/#", False),  # a/# matches "a", a/+/# does not
    ("a", "a/#", False),
    ("a/+", "a", False),
    ("a/+", "a/b", True),
    ("a/+", "a/", True),  # "+" matches an empty level
    ("a/+", "a/+/c", False),
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a/+/c", True),
    ("a/b/c", "a/+/c", False),
    ("a/b", "a/c", False),
    ("+", "#", False),
    ("+", "/", False),
    ("+/+", "/", True),
    ("#", "a/#", True),
    ("#", "+", True),
    ("#", "#", True),
    ("#", "a/$SYS", True),  # "$" only matters in the first level
    ("+/$x", "a/$x", True),
    ("+/#", "#", True),  # a topic has at least one level: the same set
    ("#", "+/#", True),
    ("+/+/#", "#", False),
    ("+/+/#", "+/#", False),
    ("+/+/#", "/#", True),  # "/#" does not match "", the parent of its "#"
    ("/+/#", "/#", True),
    ("/#", "/+/#", True),
    ("a/+/#", "a/+", True),
    ("#", "$SYS/x", False),  # a first-level wildcard never matches "$" topics
    ("#", "$SYS/#", False),
    ("+/#", "$SYS", False),
    ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/x", True),
    ("$SYS/#", "$SYS", True),
    ("$SYS/+", "$SYS/#", False),
    ("$SYS/#", "+/#", False),
    ("+/events/rpc", "x/events/rpc", True),
    ("+/events/rpc", "+/+/rpc", False),
    ("+/+/rpc", "+/events/rpc", True),
    ("shellies/x/#", "shellies/x/status/+", True),
]


@pytest.mark.parametrize(("a", "b", "expected"), COVERS)
def test_filter_covers(a, b, expected):
    assert filter_covers(a, b) is expected


MINIMAL = [
    ({"a/b/c", "a/+/c", "x/events/rpc", "+/events/rpc", "a/#", "a"},
     ["+/events/rpc", "a/#"]),
    (set(), []),
    (["a", "a", "a"], ["a"]),
    (["a/+", "a"], ["a", "a/+"]),
    (["+/#", "#"], ["#"]),  # the same topics: the first in sort order stays
    (["/+/#", "/#", "/"], ["/#"]),
    (["+/#", "$SYS/x", "$SYS/#"], ["$SYS/#", "+/#"]),
    (["#", "a", "$SYS/x", "+/y"], ["#", "$SYS/x"]),
    (["p/events/rpc", "p/status/+", "p/online", "owm/rpc", "+/events/rpc"],
     ["+/events/rpc", "owm/rpc", "p/online", "p/status/+"]),
    # A Gen1 and a Gen2 parser on one prefix: the Gen1 "#" takes it all.
    (("shellies/x/#", "shellies/x/events/rpc", "shellies/x/online"),
     ["shellies/x/#"]),
]  # fmt: skip


@pytest.mark.parametrize(("filters", "expected"), MINIMAL)
def test_minimal_filters(filters, expected):
    assert minimal_filters(filters) == expected


def test_minimal_filters_for_many_devices():
    filters = ["owm-1/rpc"]
    for index in range(1000):
        prefix = f"shelly/hall{index % 7}/dev{index}"
        filters += [f"{prefix}/events/rpc", f"{prefix}/status/+", f"{prefix}/online"]
    assert minimal_filters(filters) == sorted(filters)
    filters += ["shelly/+/+/events/rpc", "shelly/hall3/#"]
    result = minimal_filters(filters)
    assert len(result) == 1 + 2 + 2 * (1000 - 143)
    assert "shelly/hall3/#" in result and "shelly/hall3/dev3/online" not in result
    assert "shelly/hall4/dev4/events/rpc" not in result
    assert "shelly/hall4/dev4/online" in result


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (filter_covers, ("a/#/b", "a")),
        (filter_covers, ("a", "a+")),
        (filter_covers, ("a", None)),
        (minimal_filters, (["a", "b#"],)),
        (minimal_filters, (["a", None],)),
        (minimal_filters, ("a/#",)),  # one string is not a set of filters
    ],
)
def test_coverage_rejects_invalid_filters(call, args):
    with pytest.raises(ValueError):
        call(*args)


# Filter literals, and a fresh level no filter uses: every topic a filter can
# match has a counterpart built from these (wildcard levels -> "z") that
# matches the same filters, so "for all topics" is exhaustive over UNIVERSE
# (topics up to one level longer than the longest filter).
LITERALS = ["a", "b", "", "$s"]
SMALL_FILTERS = st.builds(
    lambda levels, tail: "/".join(levels + tail),
    st.lists(st.sampled_from([*LITERALS, "+"]), min_size=0, max_size=2),
    st.sampled_from([[], ["#"], ["+"]]),
).filter(bool)
ALL_SMALL_FILTERS = sorted(
    {
        topic_filter
        for size in range(3)
        for levels in itertools.product([*LITERALS, "+"], repeat=size)
        for tail in ([], ["#"], ["+"])
        if (topic_filter := "/".join((*levels, *tail)))
    }
)
UNIVERSE = [
    "/".join(levels)
    for size in range(1, 5)
    for levels in itertools.product([*LITERALS, "z"], repeat=size)
    if levels != ("",)  # the empty string is not a topic name
]


def test_filter_covers_agrees_with_every_topic_for_every_small_filter():
    """All 85 x 85 pairs of filters up to 3 levels, against all 779 topics."""
    assert (len(ALL_SMALL_FILTERS), len(UNIVERSE)) == (85, 779)
    matched = {
        f: frozenset(t for t in UNIVERSE if topic_matches(f, t))
        for f in ALL_SMALL_FILTERS
    }
    for a, b in itertools.product(ALL_SMALL_FILTERS, repeat=2):
        assert filter_covers(a, b) is matched[b].issubset(matched[a]), (a, b)


@settings(max_examples=200, deadline=None)
@given(st.lists(SMALL_FILTERS, max_size=7), st.lists(TOPICS, max_size=10))
def test_minimal_filters_receive_the_same_topics(filters, topics):
    result = minimal_filters(filters)
    assert result == sorted(set(result)) and set(result) <= set(filters)
    for topic in UNIVERSE + topics:
        assert any(topic_matches(f, topic) for f in filters) is any(
            topic_matches(f, topic) for f in result
        ), topic
    for a, b in itertools.permutations(result, 2):
        assert not filter_covers(a, b)
