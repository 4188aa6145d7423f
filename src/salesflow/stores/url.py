"""`open_store`: choose and open a store from one URL string.

The host picks its storage with a setting (``memory://``, ``sqlite:///path`` or
``postgresql://…``) and never names a store class, so moving from an embedded
store to a shared database is a configuration change.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from salesflow.errors import ValidationError
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec

__all__ = ["open_store"]

_FORMS = (
    "'memory://', 'sqlite:///path/to/file.db' (relative), 'sqlite:////abs/path.db', "
    "'sqlite:///:memory:' or 'postgresql://user@host:5432/dbname'"
)


def open_store(url: str, *, codec: Codec | None = None) -> Store:
    """Open the store that ``url`` names.

    Args:
        url: ``"memory://"`` for a `MemoryStore`; ``"sqlite:///<path>"`` for a
            `SQLiteStore` on ``<path>`` (relative to the working directory, or
            absolute with a fourth slash; ``"sqlite:///:memory:"`` for a private
            in-memory database); ``"postgresql://…"`` or ``"postgres://…"`` for a
            `PostgresStore` with that connection URL, whose tables live in the
            schema named by an optional ``schema`` query parameter
            (``postgresql://u@host/db?schema=crm``; default ``public``).

        codec: The codec (with the host's migrations) the store reads and writes
            records with; the default codec when omitted.

    Returns:
        The open store. Missing parent folders of a SQLite file are created.

    Raises:
        ValidationError: ``url`` has none of the accepted forms.
        StoreError: the database cannot be opened, or was written by a newer
            salesflow.
    """
    if not isinstance(url, str):
        raise ValidationError(
            f"store url={url!r} must be text; use one of {_FORMS}", field="url", value=url
        )
    if url == "memory://":
        from salesflow.stores.memory import MemoryStore

        return MemoryStore(codec)
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from salesflow.stores.sqlite import SQLiteStore

        target = url[len("sqlite:///") :]
        if target == ":memory:":
            return SQLiteStore(":memory:", codec=codec)
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(path, codec=codec)
    if url.startswith(("postgresql://", "postgres://")):
        from salesflow.stores.postgres import PostgresStore

        dsn, schema = _split_schema(url)
        return PostgresStore(dsn, schema=schema, codec=codec)
    raise ValidationError(
        f"store url {url!r} is not understood; use one of {_FORMS}", field="url", value=url
    )


def _split_schema(url: str) -> tuple[str, str]:
    """The connection URL without salesflow's ``schema`` parameter, and the schema.

    libpq refuses query parameters it does not know, so ``schema`` is taken out.
    """
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in params if key == "schema"]
    if not schemas:
        return url, "public"
    rest = urlencode([(key, value) for key, value in params if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[-1]
