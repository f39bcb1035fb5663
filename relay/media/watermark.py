"""The moderation watermark: how far into the call's media every sample has been judged.

The delay line asks it once per played frame. Until moderation lands the relay runs with
ClearAll, so the undecided policy never fires; moderation later swaps in its own object
(anything with `cleared_until`), which is why this is a Protocol and not a base class.
"""

from __future__ import annotations

import math
from typing import Protocol


class Watermark(Protocol):
    def cleared_until(self) -> float:
        """Media seconds up to which all audio has been judged; math.inf = everything cleared."""
        ...


class ClearAll:
    """The watermark until moderation lands: clears everything."""

    def cleared_until(self) -> float:
        return math.inf


class ClearNothing:
    """The watermark while moderation is unavailable: every sample is undecided, so the
    delay line's undecided policy (play or mute) decides all of the call's audio."""

    def cleared_until(self) -> float:
        return 0.0
