"""``ctx.storage``: each plugin's key–value store, kept in the ``plugin_storage`` table.

A store is bound to one namespace — (plugin id, customer), the customer being ''
for plugin-wide keys — when the host builds the context, so no call can name
another plugin's or customer's keys. Each operation is one short transaction of
its own; the SDK's :mod:`canopy_sdk.storage_rules` set the limits.

Compare-and-set is a single conditional statement (``INSERT … ON CONFLICT`` for
"only if absent", ``UPDATE … WHERE version = :v`` otherwise), so of any number of
concurrent callers expecting the same version exactly one wins, on SQLite and on
PostgreSQL alike. The key-count quota is checked before a new key is written and
may be overrun by the few writers racing at that moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from canopy_sdk import storage_rules
from canopy_sdk.errors import QuotaExceeded
from canopy_sdk.types import StoredItem
from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db import Database, utcnow
from .models import StorageEntry

_T = StorageEntry.__table__


def _live(now: datetime):
    return or_(StorageEntry.expires_at.is_(None), StorageEntry.expires_at > now)


def _insert(dialect: str):
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_T)


class PluginStorage:
    """One namespace of plugin storage. Satisfies :class:`canopy_sdk.Storage`."""

    __slots__ = ("_db", "plugin_id", "customer")

    def __init__(self, database: Database, plugin_id: str, customer: str = "") -> None:
        self._db = database
        self.plugin_id = plugin_id
        self.customer = customer

    def _where(self, key: str | None = None):
        clause = and_(StorageEntry.plugin_id == self.plugin_id, StorageEntry.customer == self.customer)
        return clause if key is None else and_(clause, StorageEntry.key == key)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value at ``key``, or ``default`` when absent or expired."""
        item = self.get_item(key)
        return default if item is None else item.value

    def get_item(self, key: str) -> StoredItem | None:
        """Return the value at ``key`` with its version, or None."""
        storage_rules.check_key(key)
        row = self._read(_GET, key=key)
        if row is None:
            return None
        expires = row.expires_at.timestamp() if row.expires_at else None
        return StoredItem(storage_rules.decode_value(row.value), row.version, expires)

    def _read(self, statement, *, all_rows: bool = False, **params: Any):
        # Reads skip the ORM session: a plain connection and a prebuilt statement are
        # several times cheaper, and storefront tiles read storage on every view.
        params.update(plugin_id=self.plugin_id, customer=self.customer, now=utcnow())
        with self._db.engine.connect() as connection:
            result = connection.execute(statement, params)
            return result.all() if all_rows else result.first()

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> int:
        """Store ``value`` at ``key``; return its new version."""
        version = self._write(key, value, ttl, expect=_ANY)
        assert version is not None
        return version

    def compare_and_set(self, key: str, value: Any, *, version: int | None, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is at ``version`` now (None: only if absent)."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise storage_rules.InvalidValue(f"version must be an integer or None, got {version!r}")
        return self._write(key, value, ttl, expect=version) is not None

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether a live value was there."""
        storage_rules.check_key(key)
        with self._db.transaction(write=True) as session:
            now = utcnow()
            result = session.execute(delete(StorageEntry).where(self._where(key), _live(now)))
            session.execute(delete(StorageEntry).where(self._where(key)))  # an expired leftover
        return result.rowcount > 0

    def list(self, prefix: str = "", *, limit: int = 100) -> list[str]:
        """Return up to ``limit`` live keys starting with ``prefix``, sorted."""
        storage_rules.check_prefix(prefix)
        storage_rules.check_limit(limit)
        if prefix:
            rows = self._read(_LIST_PREFIX, all_rows=True, prefix=prefix, prefix_length=len(prefix))
        else:
            rows = self._read(_LIST, all_rows=True)
        keys = sorted(row.key for row in rows)  # in Python: database collations do not agree on order
        return keys[:limit]

    def _write(self, key: str, value: Any, ttl: float | None, expect: Any) -> int | None:
        storage_rules.check_key(key)
        text = storage_rules.encode_value(value)
        ttl = storage_rules.check_ttl(ttl)
        size = len(text.encode("utf-8"))
        with self._db.transaction(write=True) as session:
            now = utcnow()
            expires = None if ttl is None else now + timedelta(seconds=ttl)
            values = {"value": text, "size": size, "expires_at": expires, "updated_at": now}
            if expect is not _ANY and expect is not None:
                result = session.execute(
                    update(StorageEntry)
                    .where(self._where(key), StorageEntry.version == expect, _live(now))
                    .values(version=StorageEntry.version + 1, **values)
                    .returning(StorageEntry.version)
                )
                return result.scalar_one_or_none()
            exists = session.execute(select(StorageEntry.key).where(self._where(key), _live(now))).first()
            if exists is None:
                self._check_quota(session, now)
            statement = _insert(self._db.dialect).values(
                plugin_id=self.plugin_id, customer=self.customer, key=key, version=1, **values
            )
            expired = and_(_T.c.expires_at.is_not(None), _T.c.expires_at <= now)
            excluded = statement.excluded
            statement = statement.on_conflict_do_update(
                index_elements=[_T.c.plugin_id, _T.c.customer, _T.c.key],
                set_={
                    "value": excluded.value,
                    "size": excluded.size,
                    "expires_at": excluded.expires_at,
                    "updated_at": excluded.updated_at,
                    # An expired row counts as absent: it starts again at version 1.
                    "version": case((expired, 1), else_=_T.c.version + 1),
                },
                where=expired if expect is None else None,
            ).returning(_T.c.version)
            return session.execute(statement).scalar_one_or_none()

    def _check_quota(self, session, now: datetime) -> None:
        count = session.scalar(select(func.count()).select_from(StorageEntry).where(self._where(), _live(now)))
        if count >= storage_rules.MAX_KEYS_PER_NAMESPACE:
            raise QuotaExceeded(
                f"plugin {self.plugin_id!r} already holds {storage_rules.MAX_KEYS_PER_NAMESPACE} keys in this namespace"
            )


_ANY = object()

_NAMESPACE = and_(StorageEntry.plugin_id == bindparam("plugin_id"), StorageEntry.customer == bindparam("customer"))
_LIVE = or_(StorageEntry.expires_at.is_(None), StorageEntry.expires_at > bindparam("now"))
_GET = select(StorageEntry.value, StorageEntry.version, StorageEntry.expires_at).where(
    _NAMESPACE, StorageEntry.key == bindparam("key"), _LIVE
)
_LIST = select(StorageEntry.key).where(_NAMESPACE, _LIVE)
# substr, not LIKE or a range: exact on every collation, no escaping of '_' or '%'.
_LIST_PREFIX = _LIST.where(func.substr(StorageEntry.key, 1, bindparam("prefix_length")) == bindparam("prefix"))


def purge_expired(database: Database) -> int:
    """Delete every expired key of every plugin; return how many were removed."""
    with database.transaction(write=True) as session:
        result = session.execute(
            delete(StorageEntry).where(StorageEntry.expires_at.is_not(None), StorageEntry.expires_at <= utcnow())
        )
    return result.rowcount
