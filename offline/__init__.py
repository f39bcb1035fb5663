"""Offline tools over recorded or logged calls: eval-text, eval-calls, replay.

The live server never imports this package.
"""
