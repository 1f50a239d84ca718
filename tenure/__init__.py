"""Tenure: a plugin-based headless CRM server for customer retention, served over GraphQL.

``tenure.plugin`` is the partner API, the names a plugin package imports; ``tenure.testing``
and the pytest plugin ``tenure.pytest_plugin`` test one. The rest is Tenure's own:
``tenure.core`` (the domain), ``tenure.workers`` (jobs), ``tenure.schema`` (GraphQL),
``tenure.plugins`` (the built-in plugins), ``tenure.migrations``, and the commands in
``tenure.cli``, which assemble them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tenure")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"
