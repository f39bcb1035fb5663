"""One call's wiring (peers, delay line, transcription, moderation, log) and the running calls."""
