"""The resident registry schema: a subset of the 住民記録システム標準仕様 for each tenant.

The registry lives in the tenant's own database (SQLite by default, PostgreSQL supported) and
is backed up and replicated like any other system; exports read it from a restored snapshot.
It deliberately holds the identifiers no export may ever carry (個人番号, 住民票コード, 本籍,
insurance and pension numbers) so that tests can prove they never leave.

Codes (local to bcpctl, documented here because the 中間標準レイアウト code tables were not
available): 性別 ``1`` 男 ``2`` 女 ``9`` 不明; 住民状態 ``1`` 住民 ``2`` 転出 ``3`` 死亡
``4`` 職権消除.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from dc.errors import N_
from victim_support.errors import RegistryError

registry_metadata = MetaData()

STATUS_RESIDENT = "1"

residents = Table(
    "residents",
    registry_metadata,
    Column("atena_no", String(15), primary_key=True, comment="宛名番号"),
    Column("setai_no", String(15), nullable=False, comment="世帯番号"),
    Column("family_name", Text, nullable=False, comment="氏"),
    Column("given_name", Text, nullable=False, comment="名"),
    Column("family_name_kana", Text, nullable=False, comment="氏フリガナ"),
    Column("given_name_kana", Text, nullable=False, comment="名フリガナ"),
    Column("kana_verified", Boolean, nullable=False, default=False, comment="フリガナ確認フラグ"),
    Column("birth_date", Date, nullable=False, comment="生年月日"),
    Column("sex", String(1), nullable=False, comment="性別"),
    Column("relationship", String(16), nullable=False, comment="世帯主との続柄"),
    Column("machiaza_id", String(7), nullable=False, comment="町字ID"),
    Column("machiaza_name", Text, nullable=False, comment="町字"),
    Column("banchi", Text, nullable=False, comment="番地"),
    Column("katagaki", Text, nullable=False, default="", comment="方書"),
    Column("postal_code", String(7), nullable=False, comment="郵便番号"),
    Column("resident_since", Date, nullable=False, comment="住民となった年月日"),
    Column("status", String(1), nullable=False, comment="住民状態"),
    Column("shien_sochi", Boolean, nullable=False, default=False, comment="支援措置 (DV等)"),
    Column("yokushi", Boolean, nullable=False, default=False, comment="抑止"),
    Column("yoshiensha", Boolean, nullable=False, default=False, comment="避難行動要支援者"),
    Column("support_reason_code", String(2), nullable=False, default="", comment="避難支援等を必要とする事由"),
    Column("phone", Text, nullable=False, default="", comment="連絡先"),
    # Never exported (番号法19条, 住基法30条の37); present so the export can prove it.
    Column("kojin_bango", String(12), nullable=False, comment="個人番号"),
    Column("juminhyo_code", String(11), nullable=False, comment="住民票コード"),
    Column("honseki", Text, nullable=False, default="", comment="本籍"),
    Column("kokuho_no", Text, nullable=False, default="", comment="国民健康保険 被保険者記号番号"),
    Column("kiso_nenkin_no", Text, nullable=False, default="", comment="基礎年金番号"),
)
# Exports read residents in address order (町字, 世帯, 宛名): this index makes that a plain walk, no sort.
Index("residents_address_order", residents.c.machiaza_id, residents.c.setai_no, residents.c.atena_no)
Index("residents_setai", residents.c.setai_no)

#: 被災者台帳 entries (災対法90条の3②: 住家の被害その他の被害の状況, 援護の実施の状況).
damage = Table(
    "damage",
    registry_metadata,
    Column("atena_no", String(15), primary_key=True),
    Column("disaster_id", String(64), primary_key=True),
    Column("damage_status", Text, nullable=False, default="", comment="住家の被害の状況"),
    Column("certificate_status", Text, nullable=False, default="", comment="罹災証明書の交付状況"),
    Column("aid_status", Text, nullable=False, default="", comment="援護の実施の状況"),
)

#: Which municipality this registry belongs to, so a build can refuse another tenant's data.
registry_info = Table(
    "registry_info",
    registry_metadata,
    Column("key", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

#: 避難支援等を必要とする事由 codes (coded, never free text: 要配慮個人情報).
SUPPORT_REASONS = {
    "01": "要介護3以上",
    "02": "身体障害者手帳1・2級",
    "03": "療育手帳A",
    "04": "精神障害者保健福祉手帳1級",
    "05": "難病患者",
    "06": "75歳以上のみの世帯",
    "07": "単身の高齢者",
    "99": "その他避難支援が必要と認める者",
}


def registry_url(target: str) -> str:
    """A SQLAlchemy URL from a SQLite path or a ``postgresql://`` DSN."""
    if target.startswith(("postgresql://", "postgresql+psycopg://")):
        return "postgresql+psycopg://" + target.split("://", 1)[1]
    if target.startswith("sqlite:///"):
        return target
    return f"sqlite:///{Path(target).absolute()}"


def open_registry(target: str, *, read_only: bool = False) -> Engine:
    """Connect to a registry; a read-only SQLite file is opened with ``mode=ro``."""
    url = registry_url(target)
    if url.startswith("sqlite:///") and read_only:
        path = url.removeprefix("sqlite:///")
        if not Path(path).is_file():
            raise RegistryError(N_("registry database {path} not found"), path=path)
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    else:
        engine = create_engine(url)
    if url.startswith("sqlite:///"):

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def create_registry(engine: Engine | Connection, *, replace: bool = False) -> None:
    """Create the registry tables; ``replace`` drops existing ones first (seeding only)."""
    if replace:
        registry_metadata.drop_all(engine)
    registry_metadata.create_all(engine)


def registry_lg_code(engine: Engine) -> str | None:
    """The 全国地方公共団体コード the registry was written for, or ``None`` if it does not say."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            return conn.execute(select(registry_info.c.value).where(registry_info.c.key == "lg_code")).scalar()
    except SQLAlchemyError as exc:
        raise RegistryError(N_("not a resident registry: {exc}"), exc=str(exc).splitlines()[0]) from None
