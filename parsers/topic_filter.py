"""MQTT 3.1.1 / 5 topic names, topic filters and a fast topic router.

The runner's engine routes every incoming message to the device(s) whose filter
matches; with 1,000 devices that must not be a linear scan, so exact filters
sit in a dict and wildcard filters in a level trie.
"""

from collections.abc import Hashable, Iterable
from typing import Any, Final, Generic, TypeVar

_MAX_BYTES: Final = 65535

# A router's value (a device id, a filter): hashable, kept as a dict key.
V = TypeVar("V", bound=Hashable)


def _check_common(text: str, what: str) -> None:
    if type(text) is not str:
        raise ValueError(f"MQTT {what} must be a string, not {type(text).__name__}")
    if not text:
        raise ValueError(f"MQTT {what} must not be empty")
    if "\x00" in text:
        raise ValueError(f"MQTT {what} must not contain the NUL character")
    if len(text) > _MAX_BYTES // 4 or not text.isascii():
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError(f"MQTT {what} is not valid UTF-8") from None
        if size > _MAX_BYTES:
            raise ValueError(
                f"MQTT {what} is {size} bytes long, the maximum is {_MAX_BYTES}"
            )


def validate_filter(topic_filter: str) -> None:
    """Raise ValueError with a clear reason when the filter is not valid MQTT."""
    _check_common(topic_filter, "topic filter")
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if "#" in level:
            if level != "#":
                raise ValueError(
                    f"'#' must occupy a whole level in topic filter {topic_filter!r}"
                )
            if index != last:
                raise ValueError(
                    f"'#' must be the last level of topic filter {topic_filter!r}"
                )
        if "+" in level and level != "+":
            raise ValueError(
                f"'+' must occupy a whole level in topic filter {topic_filter!r}"
            )


def validate_topic(topic: str) -> None:
    """Raise ValueError unless ``topic`` is a valid topic name (no wildcards)."""
    _check_common(topic, "topic name")
    if "+" in topic or "#" in topic:
        raise ValueError(
            f"MQTT topic name {topic!r} must not contain the wildcards '+' or '#'"
        )


def has_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """True when ``topic`` matches the (valid) ``topic_filter``."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    if topic[:1] == "$" and topic_filter[:1] in ("+", "#"):
        return False
    flevels = topic_filter.split("/")
    tlevels = topic.split("/")
    ntopic = len(tlevels)
    for index, flevel in enumerate(flevels):
        if flevel == "#":
            return True  # also matches the parent level: a/# matches a
        if index >= ntopic:
            return False
        if flevel != "+" and flevel != tlevels[index]:
            return False
    return len(flevels) == ntopic


def filter_covers(a: str, b: str) -> bool:
    """True when every topic that matches filter ``b`` also matches filter ``a``.

    Exact MQTT semantics: ``+`` is one level (also an empty one), ``#`` is
    any number of levels including none (``a/#`` matches ``a``), and a filter
    whose first level is a wildcard never matches a topic starting with ``$``.
    A filter covers itself. Raises ValueError for an invalid filter.
    """
    validate_filter(a)
    validate_filter(b)
    return _covers(a.split("/"), b.split("/"))


def _covers(alevels: list[str], blevels: list[str]) -> bool:
    """``filter_covers`` on split, already validated filters."""
    if alevels[0] in ("+", "#") and blevels[0][:1] == "$":
        return False  # b matches only $-topics, which a first wildcard never does
    nb = len(blevels)
    for index, alevel in enumerate(alevels):
        if alevel == "#":
            return True  # a takes any rest, also none: b's topics all agree so far
        if index == nb:
            return False  # b's topics end here; a wants one more level
        blevel = blevels[index]
        if blevel == "#":
            # b takes any rest of levels, a has no "#" here. A rest of none
            # would leave "" for "#" and "/#", which is no topic: there b's
            # rest has >= 1 level, and "+/#" takes exactly that as well.
            if index == 0 or (index == 1 and blevels[0] == ""):
                return alevel == "+" and alevels[index + 1 :] == ["#"]
            return False
        if alevel != "+" and alevel != blevel:
            return False  # a literal covers only the same literal, never "+"
    return len(alevels) == nb


def minimal_filters(filters: Iterable[str]) -> list[str]:
    """The smallest subscription set that receives exactly the same topics.

    Sorted and deduplicated, without any filter that another one of the set
    covers (see :func:`filter_covers`). A broker delivers one copy of a
    message per matching subscription of a client, so overlapping filters
    would make the runner read the same message several times. Of filters
    that cover each other (the same topics: ``#`` and ``+/#``, ``/#`` and
    ``/+/#``, because the empty string is no topic), the first in sort order
    stays. Raises ValueError for an invalid filter.
    """
    if type(filters) is str:
        raise ValueError("expected a collection of topic filters, not one string")
    filters = list(filters)
    for topic_filter in filters:
        validate_filter(topic_filter)
    unique = sorted(set(filters))
    router: TopicRouter[str] = TopicRouter()
    for topic_filter in unique:
        router.add(topic_filter, topic_filter)
    kept: list[str] = []
    for b in unique:
        blevels = b.split("/")
        # Every filter covering b matches b with its wildcards replaced by one
        # level no filter contains (NUL is invalid in a filter): candidates.
        probe = "/".join("\x00" if level in ("+", "#") else level for level in blevels)
        for a in router.match(probe):
            if a == b or not _covers(a.split("/"), blevels):
                continue
            # a covers b: drop b, unless they cover each other and b sorts first.
            if a < b or not _covers(blevels, a.split("/")):
                break
        else:
            kept.append(b)
    return kept


class _Node:
    __slots__ = ("children", "hash", "here", "plus")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.plus: _Node | None = None
        # value -> sequence number, filter ends at this node
        self.here: dict[Any, int] = {}
        # value -> sequence number, filter ends with "/#" here
        self.hash: dict[Any, int] = {}

    def empty(self) -> bool:
        return not (self.children or self.plus or self.here or self.hash)


class TopicRouter(Generic[V]):
    """Map topic filters to values; ``match`` returns all values for a topic.

    Values must be hashable. Each value appears once per match, the most
    specific filter first: the topic itself, then filters with "+" only, then
    those ending in "#" (the longer before the shorter); among equals in the
    order they were first added (deterministic whichever filters matched).
    So a machine's own topics go to that machine even when a wildcard filter
    added before it covers them too.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._exact: dict[str, dict[V, int]] = {}
        self._root = _Node()
        self._wild = 0
        self._count = 0
        self._seq = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic_filter: str, value: V) -> None:
        """Register ``value`` under ``topic_filter`` (a no-op if already there)."""
        validate_filter(topic_filter)
        if not has_wildcard(topic_filter):
            slot = self._exact.setdefault(topic_filter, {})
        else:
            node = self._root
            levels = topic_filter.split("/")
            if levels[-1] == "#":
                levels.pop()
                final = "hash"
            else:
                final = "here"
            for level in levels:
                if level == "+":
                    if node.plus is None:
                        node.plus = _Node()
                    node = node.plus
                else:
                    node = node.children.setdefault(level, _Node())
            slot = getattr(node, final)
        if value not in slot:
            self._seq += 1
            slot[value] = self._seq
            self._count += 1
            if has_wildcard(topic_filter):
                self._wild += 1

    def remove(self, topic_filter: str, value: V) -> bool:
        """Unregister; returns False when the pair was not registered."""
        if not has_wildcard(topic_filter):
            slot = self._exact.get(topic_filter)
            if not slot or value not in slot:
                return False
            del slot[value]
            if not slot:
                del self._exact[topic_filter]
            self._count -= 1
            return True
        levels = topic_filter.split("/")
        final = "here"
        if levels[-1] == "#":
            levels.pop()
            final = "hash"
        path = [self._root]
        node: _Node | None
        for level in levels:
            node = path[-1]
            node = node.plus if level == "+" else node.children.get(level)
            if node is None:
                return False
            path.append(node)
        slot = getattr(path[-1], final)
        if value not in slot:
            return False
        del slot[value]
        self._count -= 1
        self._wild -= 1
        # Prune empty nodes bottom-up so removed devices leave no garbage.
        for depth in range(len(levels), 0, -1):
            node, parent, level = path[depth], path[depth - 1], levels[depth - 1]
            if not node.empty():
                break
            if level == "+":
                parent.plus = None
            else:
                del parent.children[level]
        return True

    def match(self, topic: str) -> list[V]:
        """All values whose filter matches ``topic``."""
        exact = self._exact.get(topic)
        if not self._wild:
            return list(exact) if exact else []
        # (how general the filter is, its values): "+" filters before "#"
        # ones, a deeper "#" before a shallower one
        found: list[tuple[int, dict[V, int]]] = []
        levels = topic.split("/")
        last = len(levels)
        root = self._root
        if topic[:1] == "$":
            # Wildcards in the first level never match $-topics.
            node = root.children.get(levels[0])
            stack = [(node, 1)] if node is not None else []
        else:
            stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if node.hash:
                found.append((last + 1 - depth, node.hash))
            if depth == last:
                if node.here:
                    found.append((0, node.here))
                continue
            child = node.children.get(levels[depth])
            if child is not None:
                stack.append((child, depth + 1))
            if node.plus is not None:
                stack.append((node.plus, depth + 1))
        if not found:
            return list(exact) if exact else []
        if len(found) == 1 and not exact:
            return list(found[0][1])
        merged: dict[V, tuple[int, int]] = {}
        for rank, slot in found:
            for value, seq in slot.items():
                old = merged.get(value)
                if old is None or (rank, seq) < old:
                    merged[value] = (rank, seq)
        wild = sorted(merged, key=merged.__getitem__)
        if not exact:
            return wild
        return list(exact) + [value for value in wild if value not in exact]
