"""Tenure's GraphQL layer: core types, queries, mutations, dataloaders, permissions and
limits, and :func:`tenure.schema.build.build_schema`, which assembles the schema from the core and
the enabled plugins. Resolvers are thin: every rule lives in ``core`` or a plugin's
``service`` module."""
