"""The customer's audio on the call's one clock: media time, the delay line, mutes, fades,
the watermark; and the Opus voice codec."""
