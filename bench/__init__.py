"""Teddy Hub's throughput and latency benchmark (``python -m bench``, ``make bench``).

Not a test: it asserts nothing and prints figures. It answers one question the issue asked:
how much of the rate at which aiomqtt alone can receive from Mosquitto does the full hub path
(consumer, gate, Redis nonce claims, dispatcher) keep, and how long does a frame take from a
toy's publish to its handler. Signed frames come from a separate process through a dedicated
Mosquitto; see ``bench/__main__.py`` for the phases and ``bench/publisher.py`` for the toys.
"""
