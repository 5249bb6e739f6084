"""Whether two event globs can match one name: how a configuration is checked.

A metric rule for ``payment.*`` is useless unless some mapping that routes to the
metrics backend can match a name the rule matches too. Both are ``fnmatch`` globs
(``*``, ``?``, ``[seq]``, ``[!seq]``), so the question is whether two globs have a
name in common; :func:`globs_overlap` answers it exactly, by walking both patterns
at once (a ``*`` on either side may absorb what the other side matches).
"""

from __future__ import annotations

import functools

import attrs

__all__ = ["globs_overlap"]


@attrs.frozen
class _Chars:
    """One character position: any character, one of ``chars``, or none of them."""

    chars: frozenset[str] = frozenset()
    negated: bool = False
    any: bool = False

    def meets(self, other: _Chars) -> bool:
        """Whether some character fits both positions."""
        if self.any:
            return other.any or other.negated or bool(other.chars)
        if other.any:
            return self.negated or bool(self.chars)
        if self.negated and other.negated:
            return True  # the alphabet is unbounded; two finite exclusions leave plenty
        if self.negated:
            return bool(other.chars - self.chars)
        if other.negated:
            return bool(self.chars - other.chars)
        return bool(self.chars & other.chars)


_STAR = None  # a ``*`` token
_ANY = _Chars(any=True)


def _bracket(pattern: str, start: int) -> tuple[_Chars, int] | None:
    """Parse ``[...]`` at ``start`` as fnmatch does; None when it does not close."""
    index = start + 1
    negated = index < len(pattern) and pattern[index] == "!"
    if negated:
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1  # a ']' right after '[' or '[!' is a member
    end = pattern.find("]", index)
    if end < 0:
        return None
    body = pattern[start + 1 + negated : end]
    chars: set[str] = set()
    position = 0
    while position < len(body):
        if position + 2 < len(body) and body[position + 1] == "-":
            low, high = ord(body[position]), ord(body[position + 2])
            chars.update(chr(code) for code in range(low, high + 1))
            position += 3
        else:
            chars.add(body[position])
            position += 1
    return _Chars(frozenset(chars), negated=negated), end + 1


@functools.lru_cache(maxsize=512)
def _tokens(pattern: str) -> tuple[_Chars | None, ...]:
    tokens: list[_Chars | None] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
            index += 1
        elif char == "?":
            tokens.append(_ANY)
            index += 1
        elif char == "[" and (parsed := _bracket(pattern, index)) is not None:
            tokens.append(parsed[0])
            index = parsed[1]
        else:
            tokens.append(_Chars(frozenset(char)))
            index += 1
    return tuple(tokens)


def globs_overlap(first: str, second: str) -> bool:
    """Whether some event name matches both globs (plain names are globs too)."""
    left, right = _tokens(first), _tokens(second)

    @functools.cache
    def meet(i: int, j: int) -> bool:
        if i == len(left):
            return all(token is _STAR for token in right[j:])
        if j == len(right):
            return all(token is _STAR for token in left[i:])
        a, b = left[i], right[j]
        if a is None:  # left's star ends here, or also takes the character b matches
            return meet(i + 1, j) or ((b is None or _ANY.meets(b)) and meet(i, j + 1))
        if b is None:
            return meet(i, j + 1) or (_ANY.meets(a) and meet(i + 1, j))
        return a.meets(b) and meet(i + 1, j + 1)

    return meet(0, 0)
