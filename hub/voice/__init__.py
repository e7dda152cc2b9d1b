"""The voice of the toy: audio formats, providers (offline and OpenAI-compatible), the turn.

See :mod:`hub.voice.providers` for the four small interfaces every provider implements.
"""
