"""Running jobs: the in-process runner of the embedded default, the dramatiq broker and
worker of the distributed path, and the periodic scheduler. Both paths run the same code,
:func:`tenure.core.outbox.run_entry`, for every outbox entry."""
