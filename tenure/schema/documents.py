"""Persisted documents: the operations an app was built with, known to the server by hash.

A client build writes its operations to a manifest, a JSON object from the SHA-256 (hex) of
each document's text to that text (examples/typescript-client writes one with `npm run
persisted`), and the server reads it from ``TENURE_PERSISTED_DOCUMENTS``. A request then names
its document by hash, in the shape Apollo's and urql's persisted-query links send::

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}, "variables": {...}}

(by GET too, with ``extensions`` as a query parameter). With
``TENURE_MEMBER_PERSISTED_ONLY=true`` a member token may run only the manifest's documents:
the member app's API is the operations it shipped with, not whatever a token holder writes.
Staff and integration keys may still send any document (the portal, scripts, GraphiQL).
Only documents of the manifest are ever stored: a hash the server does not know is refused,
never registered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError

from tenure.core.settings import SettingsError

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
REQUIRED = "PERSISTED_QUERY_REQUIRED"
MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True)
class PersistedDocuments:
    """The manifest, and whether member tokens are held to it."""

    by_hash: dict[str, str]
    members_only: bool = False

    @classmethod
    def load(cls, path: str, members_only: bool) -> PersistedDocuments:
        if not path:
            if members_only:
                raise SettingsError("TENURE_MEMBER_PERSISTED_ONLY needs TENURE_PERSISTED_DOCUMENTS, the manifest "
                                    "of the documents member apps may run")
            return cls({}, False)
        try:
            manifest = json.loads(Path(path).read_text())
        except OSError as error:
            raise SettingsError(f"TENURE_PERSISTED_DOCUMENTS: cannot read {path}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise SettingsError(f"TENURE_PERSISTED_DOCUMENTS: {path} is not JSON ({error.msg}, line {error.lineno})"
                                ) from None
        if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
            raise SettingsError(f"TENURE_PERSISTED_DOCUMENTS: {path} must be a JSON object from SHA-256 hashes "
                                "to document texts")
        wrong = [key for key, text in manifest.items() if document_hash(text) != key.removeprefix("sha256:")]
        if wrong:
            raise SettingsError(f"TENURE_PERSISTED_DOCUMENTS: {len(wrong)} entries of {path} are not the SHA-256 "
                                f"of their document, the first {wrong[0]!r}")
        return cls({key.removeprefix("sha256:"): text for key, text in manifest.items()}, members_only)

    def resolve(self, query: str | None, extensions: dict[str, Any] | None, member: bool) -> str | None:
        """The document to run, or a :class:`GraphQLError` saying why the request is refused."""
        persisted = (extensions or {}).get("persistedQuery")
        if isinstance(persisted, dict):
            wanted = str(persisted.get("sha256Hash") or "").removeprefix("sha256:").lower()
            if query is not None:
                if document_hash(query) != wanted:
                    raise GraphQLError("the query's SHA-256 is not the persistedQuery's sha256Hash",
                                       extensions={"code": MISMATCH})
            elif wanted in self.by_hash:
                query = self.by_hash[wanted]
            else:
                # Apollo's and urql's links read this message and code; they do not resend
                # the text, as this server never registers documents.
                raise GraphQLError("PersistedQueryNotFound: this server has no document with that hash "
                                   "(TENURE_PERSISTED_DOCUMENTS)", extensions={"code": NOT_FOUND})
        if member and self.members_only and (query is None or document_hash(query) not in self.by_hash):
            raise GraphQLError("member tokens may run only the app's persisted documents: send the document's "
                               "hash from the manifest (TENURE_MEMBER_PERSISTED_ONLY)", extensions={"code": REQUIRED})
        return query


