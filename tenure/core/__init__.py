"""Tenure's core: the retention domain, knowing nothing of GraphQL.

Settings, the database, the models, the services that own every rule, domain events,
the outbox, the plugin contract (``core.hookspecs``) and the plugin manager.
"""

__version__ = "0.1.0"
