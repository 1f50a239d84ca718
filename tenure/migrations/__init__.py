"""Alembic environment and the core's revisions (branch ``core``). Each plugin keeps its
revisions in its own package on its own branch; see :mod:`tenure.core.migrate`."""
