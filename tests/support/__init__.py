"""Real parts the tests talk to instead of mocks (receivers for outgoing messages)."""
