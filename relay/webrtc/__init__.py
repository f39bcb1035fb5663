"""The two peers of a call: aiortc connections, the RTP tap, Opus tracks, forwarding, SDP and ICE checks."""
