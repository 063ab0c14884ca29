"""Tests for fnet.tokenization.offsets: the identity-alignment shortcut agrees with the general mapping."""

from __future__ import annotations

import pytest

from fnet.tokenization.offsets import SPIECE_UNDERLINE as U
from fnet.tokenization.offsets import map_offsets


@pytest.mark.parametrize(
    "pre, pieces, sp_offsets, expected",
    [
        ("ab cd", [U + "ab", U + "cd"], [(0, 2), (2, 5)], [(0, 2), (3, 5)]),
        # a leading whitespace that is not " " (kept with remove_space=False) is not part of the span
        ("\x1f\u00f6", [U + "\u00f6"], [(0, 2)], [(1, 2)]),
        ("a\tb", [U + "a", U + "b"], [(0, 1), (1, 3)], [(0, 1), (2, 3)]),
    ],
)
def test_shortcut_equals_general_mapping(pre, pieces, sp_offsets, expected):
    starts, ends = range(len(pre)), range(1, len(pre) + 1)
    fast = map_offsets(pieces, sp_offsets, pre, (starts, ends))
    general = map_offsets(pieces, sp_offsets, pre, (list(starts), list(ends)))
    assert fast == general == expected, f"shortcut {fast}, general {general}, expected {expected}"
