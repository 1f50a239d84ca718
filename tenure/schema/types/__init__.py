"""The core's GraphQL types, one module per part of the domain."""
