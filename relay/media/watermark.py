"""The moderation watermark: how far into the call's media every sample has been judged.

The delay line asks it once per played frame. The call picks one when it is set up and
hands the same object to the delay line and to whatever moves it: ClearAll when
transcription is switched off, ClearNothing when it is unavailable (the undecided policy
decides everything), JudgedUntil when the call's transcription and moderation run.
"""

from __future__ import annotations

import math
from typing import Protocol


class Watermark(Protocol):
    def cleared_until(self) -> float:
        """Media seconds up to which all audio has been judged; math.inf = everything cleared."""
        ...

    def heard_until(self) -> float:
        """Media seconds up to which some text, the provisional tail included, has been
        judged (>= cleared_until). Past it a decision is still to come: the elastic delay
        slows playout before audio reaches it. math.inf where no decision is coming."""
        ...


def judged_until(watermark: Watermark) -> float:
    """Media seconds up to which the checks have seen every sample's text, the provisional
    tail included: what plays past it is undecided (the undecided policy decides it).

    The tail is judged at once and a hit on it mutes from the word's onset, so audio under
    it has been decided on the best transcript there is; counting it undecided until a
    second pass confirms it left 27 % of a real-Whisper call "undecided" at D = 1.5 s where
    11 % had never been judged at all (bench/stt_lag.py, undecided_pct vs _tail_pct).
    A watermark whose heard_until is infinite promises no text (ClearNothing): only its
    cleared_until counts."""
    cleared, heard = watermark.cleared_until(), watermark.heard_until()
    return cleared if math.isinf(heard) else max(cleared, heard)


class ClearAll:
    """The watermark until moderation lands: clears everything."""

    def cleared_until(self) -> float:
        return math.inf

    def heard_until(self) -> float:
        return math.inf


class ClearNothing:
    """The watermark while moderation is unavailable: every sample is undecided, so the
    delay line's undecided policy (play or mute) decides all of the call's audio."""

    def cleared_until(self) -> float:
        return 0.0

    def heard_until(self) -> float:
        # Nothing will be decided: waiting for it would only grow the delay.
        return math.inf


class JudgedUntil:
    """The watermark of a moderated call: moved by its transcription, only forward, to
    what has been transcribed AND judged."""

    def __init__(self) -> None:
        self._until = 0.0
        self._heard = 0.0

    def cleared_until(self) -> float:
        return self._until

    def heard_until(self) -> float:
        return max(self._until, self._heard)

    def advance(self, media_s: float, heard_s: float = 0.0) -> None:
        """`heard_s`: the end of the newest text judged, provisional words included."""
        self._until = max(self._until, media_s)
        self._heard = max(self._heard, heard_s)
