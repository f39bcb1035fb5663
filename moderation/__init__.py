"""Audio in, decisions out. Never imports relay/ or aiortc (see DESIGN.md)."""
