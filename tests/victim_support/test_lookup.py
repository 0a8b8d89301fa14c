"""Finding one evacuee, against the real fixture (五霞町 at 5%, read from the offsite replica).

Variants a shelter official types (髙/高, 﨑/崎, 邉/辺, hiragana, half-width katakana, spaces)
find the person; near misses find nobody; enumeration is refused (wildcards, a name part
alone, more than the per-hour limit); protected residents are invisible and their town is
told; every answer takes the same time.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dc.audit import read_entries
from tests.conftest import Cli
from tests.victim_support.conftest import Site
from tests.victim_support.flow import context
from tests.victim_support.test_cli import one_line_error
from victim_support.errors import PolicyRejected
from victim_support.lookup import ANSWERED, NOTICE, REFUSED, LookupAnswer, lookup_evacuee, read_notices
from victim_support.lookuprules import LookupQuery
from victim_support.namematch import name_key, variants
from victim_support.pseudonym import Pseudonymizer

DISASTER = "2026-kanto-eq"
#: the common form → an old or variant form, to write queries the way the registry does not hold them
OLD_FORM = {common: variant for variant, common in variants().items() if len(variant) == 1}


def half_width(text: str) -> str:
    """Katakana as a borrowed PC's IME may give it: half-width (ｶﾞ for ガ)."""
    table: dict[str, str] = {}
    for code in range(0xFF66, 0xFF9E):
        half = chr(code)
        table[unicodedata.normalize("NFKC", half)] = half
        for mark in ("\uff9e", "\uff9f"):
            combined = unicodedata.normalize("NFKC", half + mark)
            if len(combined) == 1:
                table[combined] = half + mark
    return "".join(table.get(ch, ch) for ch in text)


def hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if 0x30A1 <= ord(c) <= 0x30F6 else c for c in text)


def with_lookups(site: Site, **rule: Any) -> None:
    doc = yaml.safe_load(site.config_path.read_text())
    doc["exports"]["lookups"] = {
        "partners": ["tsukuba"],
        "disasters": [DISASTER],
        "answer_seconds": 0,
        **rule,
    }
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))


def residents(site: Site, where: str = "not shien_sochi and not yokushi") -> list[sqlite3.Row]:
    conn = sqlite3.connect(site.registry)
    conn.row_factory = sqlite3.Row
    return conn.execute(f"select * from residents where status='1' and {where} order by atena_no").fetchall()


def ask(site: Site, family: str, given: str, born: str | date, **changes: Any) -> LookupAnswer:
    config, settings, state = context(site)
    fields: dict[str, Any] = {
        "partner": "tsukuba",
        "tenant": "goka",
        "disaster_id": DISASTER,
        "family": family,
        "given": given,
        "birth_date": born if isinstance(born, date) else date.fromisoformat(born),
        "machiaza": None,
        "official": "つくば市 避難所 佐藤",
        **changes,
    }
    extra = {k: fields.pop(k) for k in ("monotonic", "sleep", "now", "approval") if k in fields}
    return lookup_evacuee(
        state,
        config,
        settings,
        LookupQuery(**fields),
        now=extra.get("now", datetime.now(UTC)),
        config_dir=site.root,
        **{k: v for k, v in extra.items() if k != "now"},
    )


def test_a_resident_is_found_however_the_name_is_written(site: Site) -> None:
    with_lookups(site, per_official_per_hour=100)
    people = residents(site)
    with_variant = [p for p in people if any(ch in OLD_FORM for ch in p["family_name"])][:3]
    assert with_variant, "the fixture has 高橋, 山崎, 渡辺 … residents"
    for person in with_variant:
        old = "".join(OLD_FORM.get(ch, ch) for ch in person["family_name"])
        assert old != person["family_name"]
        forms = [
            (old, person["given_name"], None),  # 髙橋 for 高橋
            (f" {person['family_name']}　", unicodedata.normalize("NFKC", person["given_name"]), None),
            (half_width(person["family_name_kana"]), half_width(person["given_name_kana"]), None),
            (hiragana(person["family_name_kana"]), person["given_name"], person["machiaza_name"]),
        ]
        for family, given, area in forms:
            answer = ask(site, family, given, person["birth_date"], machiaza=area)
            assert answer.found and not answer.ambiguous, (family, given)
            (candidate,) = answer.candidates
            assert candidate["birth_date"] == person["birth_date"]
            assert candidate["name"].replace("\u3000", "") == person["family_name"] + person["given_name"]
            # only the lawful fields: never an identifier, a phone, or the street address
            assert set(candidate) == set(answer.columns)
            assert not set(candidate) & {"atena_no", "kojin_bango", "juminhyo_code", "phone", "banchi", "honseki"}
            assert person["atena_no"] not in json.dumps(candidate, ensure_ascii=False)


def test_the_variant_table_holds_what_nfkc_does_not_fold() -> None:
    assert name_key("髙﨑") == name_key("高崎") and name_key("たかさき") == name_key("ﾀｶｻｷ") == name_key("タカサキ")
    assert name_key("渡邉\U000e0102") == name_key("渡辺")  # an MJ registration's IVS is dropped
    assert name_key("高橋") != name_key("高僑") and name_key("一郎") != name_key("一朗")


def test_near_misses_find_nobody(site: Site) -> None:
    with_lookups(site, per_official_per_hour=100)
    person = residents(site)[5]
    born = date.fromisoformat(person["birth_date"])
    family, given = person["family_name"], person["given_name"]
    misses = [
        (family, given + "子", born),  # one character more
        (family[:-1] or "亜", given, born),  # the family name cut short: never a prefix search
        (family, given, born + timedelta(days=1)),
        (family, given, born.replace(year=born.year - 1)),
        (given, family, born),  # the parts swapped
        (person["family_name_kana"][:-1] or "ア", person["given_name_kana"], born),
    ]
    registry = {(p["family_name"], p["given_name"], p["birth_date"]) for p in residents(site, "1")}
    for fam, giv, when in misses:
        assert (fam, giv, when.isoformat()) not in registry
        answer = ask(site, fam, giv, when)
        assert not answer.found and answer.candidates == [], (fam, giv, when)


@pytest.mark.parametrize(
    ("family", "given"),
    [("*", "*"), ("高%", "誠"), ("高橋", "＊"), ("鈴木", "_"), ("鈴木", ""), ("", "誠"), ("　", "誠"), ("高?", "誠")],
)
def test_wildcards_and_a_name_part_alone_are_refused(site: Site, family: str, given: str) -> None:
    with_lookups(site)
    with pytest.raises(PolicyRejected, match="lookup refused") as caught:
        ask(site, family, given, "1960-01-24")
    assert caught.value.exit_code == 2
    _config, _settings, state = context(site)
    assert [e.action for e in read_entries(state)] == [REFUSED]  # refused lookups are audited too


def test_a_brute_force_run_is_stopped_by_the_per_hour_limits(site: Site) -> None:
    with_lookups(site, per_official_per_hour=3, per_partner_per_hour=5)
    now = datetime.now(UTC)
    person = residents(site)[0]
    # guessing dates of birth for a known name: the fourth guess of one official is refused
    for day in range(3):
        ask(site, person["family_name"], person["given_name"], date(1950, 1, 1 + day), now=now)
    with pytest.raises(PolicyRejected, match=r"3 lookups in the last hour \(limit 3\)"):
        ask(site, person["family_name"], person["given_name"], date(1950, 1, 9), now=now)
    # another official of the same partner: the partner's limit stops the run after five
    for day in range(2):
        ask(site, person["family_name"], person["given_name"], date(1951, 1, 1 + day), official="別の職員", now=now)
    with pytest.raises(PolicyRejected, match=r"partner has made 5 lookups"):
        ask(site, person["family_name"], person["given_name"], date(1952, 1, 1), official="別の職員", now=now)
    # an hour later the official may ask again
    later = ask(site, person["family_name"], person["given_name"], person["birth_date"], now=now + timedelta(hours=1))
    assert later.found
    _config, _settings, state = context(site)
    actions = [e.action for e in read_entries(state)]
    assert actions.count(ANSWERED) == 6 and actions.count(REFUSED) == 2  # one entry per lookup
    assert all(person["family_name"] not in e.details for e in read_entries(state))  # never the name asked for


def test_only_a_preauthorised_partner_and_a_declared_disaster(site: Site) -> None:
    with_lookups(site)
    person = residents(site)[0]
    for changes, why in (
        ({"partner": "koga"}, "not pre-authorised"),
        ({"disaster_id": "2026-other"}, "not a declared disaster"),
        ({"partner": "nowhere"}, "unknown partner"),
    ):
        with pytest.raises(PolicyRejected, match=why):
            ask(site, person["family_name"], person["given_name"], person["birth_date"], **changes)


def test_a_protected_resident_answers_as_not_found_and_their_town_is_told(site: Site) -> None:
    with_lookups(site, answer_seconds=2.0)
    (protected,) = residents(site, "shien_sochi")[:1]
    clock = FakeClock(work=0.4)
    answer = ask(site, protected["family_name"], protected["given_name"], protected["birth_date"], **clock.hooks())
    assert not answer.found and answer.candidates == [] and not answer.ambiguous
    assert clock.total == pytest.approx(2.0)  # padded like any other answer
    _config, _settings, state = context(site)
    (notice,) = read_notices(state, "goka")
    secret = (site.root / "goka.secret").read_text().strip().encode()
    own = Pseudonymizer(secret, _config.tenants["goka"].lg_code)
    assert notice["resident_ref"] == own.person(protected["atena_no"])
    assert notice["partner"] == "tsukuba" and notice["official"] == "つくば市 避難所 佐藤"
    answered = [json.loads(e.details) for e in read_entries(state) if e.action == ANSWERED]
    assert answered[0]["candidates"] == []
    assert any(e.action == NOTICE for e in read_entries(state))
    # the same person asked again by their 町字 too: still nobody
    again = ask(site, protected["family_name"], protected["given_name"], protected["birth_date"],
                machiaza=protected["machiaza_name"])  # fmt: skip
    assert not again.found and len(read_notices(state, "goka")) == 2
    assert read_notices(state, "other-town") == []


class FakeClock:
    """``monotonic``/``sleep`` for one lookup: the work takes ``work`` seconds, sleeps are recorded."""

    def __init__(self, work: float) -> None:
        self.calls = 0
        self.work = work
        self.slept = 0.0

    def monotonic(self) -> float:
        self.calls += 1
        return 0.0 if self.calls == 1 else self.work

    def sleep(self, seconds: float) -> None:
        self.slept += seconds

    @property
    def total(self) -> float:
        return self.work + self.slept

    def hooks(self) -> dict[str, Any]:
        return {"monotonic": self.monotonic, "sleep": self.sleep}


def test_hit_and_miss_take_the_same_time(site: Site) -> None:
    with_lookups(site, answer_seconds=3.0, per_official_per_hour=100)
    person = residents(site)[0]
    totals = []
    for work, given in ((0.3, person["given_name"]), (1.7, "存在しない名"), (2.9, person["given_name"])):
        clock = FakeClock(work)
        answer = ask(site, person["family_name"], given, person["birth_date"], **clock.hooks())
        assert answer.padded
        totals.append(clock.total)
    assert totals == [pytest.approx(3.0)] * 3
    # with the real clock, a miss is never quicker than the configured time
    with_lookups(site, answer_seconds=1.0, per_official_per_hour=100)
    started = datetime.now(UTC)
    ask(site, "存在", "しない", "1900-01-01")
    assert (datetime.now(UTC) - started).total_seconds() >= 1.0


def test_cli_lookup_and_notices(cli: Cli, site: Site, isolated_env: Path) -> None:
    with_lookups(site)
    person = residents(site)[0]
    base = ("export", "lookup", "--config", str(site.config_path), "--partner", "tsukuba", "--tenant", "goka",
            "--disaster-id", DISASTER, "--official", "山田", "--birth-date", person["birth_date"])  # fmt: skip
    found = cli(*base, "--family", half_width(person["family_name_kana"]), "--given", person["given_name"], "--json")
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["found"] and len(data["candidates"]) == 1
    shown = cli(*base, "--family", person["family_name"], "--given", person["given_name"])
    assert shown.returncode == 0 and person["given_name"] in shown.stdout
    one_line_error(cli(*base, "--family", "*", "--given", "*"), 2, "wildcard")
    notices = cli("export", "notices", "--config", str(site.config_path), "--json")
    assert notices.returncode == 0 and json.loads(notices.stdout) == []


def _approve(site: Site, lookup_id: str, approver: str, secret: str | None = None) -> dict[str, object]:
    from tests.victim_support.conftest import APPROVER_SECRETS
    from victim_support.lookupapproval import approve_lookup

    config, settings, state = context(site)
    return approve_lookup(
        state, config, settings, lookup_id, approver=approver, secret=secret or APPROVER_SECRETS.get(approver),
        now=datetime.now(UTC),
    )  # fmt: skip


def test_under_the_approval_rule_a_lookup_waits_for_one_approver_of_the_home_town(site: Site) -> None:
    from dc.errors import AuthError
    from victim_support.lookupapproval import REFUSED_CODE

    with_lookups(site, partners=[], approval={"tsukuba": "approval"})
    person, other = residents(site)[:2]
    waiting = ask(site, person["family_name"], person["given_name"], person["birth_date"])
    assert waiting.waiting and not waiting.candidates and waiting.approval_code
    code = waiting.approval_code
    assert code.startswith(waiting.id + ".")
    with pytest.raises(PolicyRejected, match=REFUSED_CODE):  # not approved yet
        ask(site, person["family_name"], person["given_name"], person["birth_date"], approval=code)
    for approver, secret, error, why in (
        ("pref-bosai", None, PolicyRejected, "not an approver of goka"),  # an alternate is not the home town
        ("goka-suzuki", "not-suzukis-secret-at-all", AuthError, "does not match"),
    ):
        with pytest.raises(error, match=why):
            _approve(site, waiting.id, approver, secret)
    done = _approve(site, waiting.id, "goka-suzuki")
    assert done["approver"] == "goka-suzuki"
    with pytest.raises(PolicyRejected, match="already approved"):
        _approve(site, waiting.id, "goka-tanaka")
    # the code answers the approved question only: not another person, not another official
    with pytest.raises(PolicyRejected, match=REFUSED_CODE):
        ask(site, other["family_name"], other["given_name"], other["birth_date"], approval=code)
    with pytest.raises(PolicyRejected, match=REFUSED_CODE):
        ask(site, person["family_name"], person["given_name"], person["birth_date"], approval=code, official="別人")
    # the same question however it is typed again (spaces, width): as matching normalises it
    answer = ask(site, f" {person['family_name']}　", person["given_name"], person["birth_date"], approval=code)
    assert answer.found and answer.id == waiting.id and not answer.waiting
    with pytest.raises(PolicyRejected, match=REFUSED_CODE):  # once
        ask(site, person["family_name"], person["given_name"], person["birth_date"], approval=code)
    # the name asked for is nowhere in the control database
    _config, _settings, state = context(site)
    stored = b"".join(p.read_bytes() for p in site.root.glob("control.db*"))
    for text in (person["family_name"], person["given_name"], person["family_name_kana"]):
        assert text.encode() not in stored
    actions = [e.action for e in read_entries(state)]
    assert "lookup.waiting" in actions and "lookup.approved" in actions and ANSWERED in actions


def test_an_approval_written_into_the_database_without_its_signature_approves_nothing(site: Site) -> None:
    from sqlalchemy import update

    from victim_support.lookupapproval import REFUSED_CODE, lookup_approvals

    with_lookups(site, partners=[], approval={"tsukuba": "approval"})
    person = residents(site)[0]
    waiting = ask(site, person["family_name"], person["given_name"], person["birth_date"])
    _config, _settings, state = context(site)
    with state.begin() as conn:
        conn.execute(
            update(lookup_approvals)
            .where(lookup_approvals.c.id == waiting.id)
            .values(approved_by="goka-suzuki", approved_at=datetime.now(UTC))
        )
    with pytest.raises(PolicyRejected, match=REFUSED_CODE):
        ask(site, person["family_name"], person["given_name"], person["birth_date"], approval=waiting.approval_code)


def test_a_preauthorised_partner_needs_no_approval_and_takes_no_code(site: Site) -> None:
    with_lookups(site, approval={"koga": "approval"})  # tsukuba pre-authorised, koga under approval
    person = residents(site)[0]
    assert ask(site, person["family_name"], person["given_name"], person["birth_date"]).found
    with pytest.raises(PolicyRejected, match="without an approval code"):
        ask(site, person["family_name"], person["given_name"], person["birth_date"], approval="lk-x.y")
    waiting = ask(site, person["family_name"], person["given_name"], person["birth_date"], partner="koga")
    assert waiting.waiting and not waiting.candidates


def test_cli_lookup_waits_then_is_approved_and_answered(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    from tests.victim_support.test_cli import secret_file

    with_lookups(site, partners=[], approval={"tsukuba": "approval"})
    person = residents(site)[0]
    args = ("export", "lookup", "--config", str(site.config_path), "--partner", "tsukuba", "--tenant", "goka",
            "--disaster-id", DISASTER, "--family", person["family_name"], "--given", person["given_name"],
            "--birth-date", person["birth_date"], "--official", "つくば市 避難所 佐藤")  # fmt: skip
    first = cli(*args, "--json")
    assert first.returncode == 0, first.stderr
    filed = json.loads(first.stdout)
    assert filed["waiting"] and filed["candidates"] == []
    approved = cli("export", "lookup-approve", filed["id"], "--approver", "goka-suzuki",
                   "--config", str(site.config_path), *secret_file(tmp_path, "goka-suzuki"), "--json")  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    answered = cli(*args, "--approval", filed["approval_code"], "--json")
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["found"]
    again = cli(*args, "--approval", filed["approval_code"])
    one_line_error(again, 2, "approval code is unknown")


def test_one_approval_code_used_twice_at_once_answers_once(site: Site) -> None:
    """Two shelters (or one replayed request) presenting one code at the same moment: the code
    is checked before the registry is read and spent after, so both could pass the check."""
    from concurrent.futures import ThreadPoolExecutor

    from victim_support.lookupapproval import REFUSED_CODE

    with_lookups(site, partners=[], approval={"tsukuba": "approval"})
    person = residents(site)[0]
    waiting = ask(site, person["family_name"], person["given_name"], person["birth_date"])
    _approve(site, waiting.id, "goka-suzuki")

    def use(_: int) -> str:
        try:
            ask(site, person["family_name"], person["given_name"], person["birth_date"], approval=waiting.approval_code)
        except PolicyRejected as exc:
            assert REFUSED_CODE in exc.message
            return "refused"
        return "answered"

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(use, range(3)))
    assert outcomes == ["answered", "refused", "refused"]
    _config, _settings, state = context(site)
    answered = [e for e in read_entries(state) if e.action == ANSWERED and waiting.id in e.details]
    assert len(answered) == 1


def test_two_approvers_at_once_approve_a_lookup_once(site: Site) -> None:
    """Both approvers of the town read the lookup as waiting before either wrote: the second was
    told it approved (and its approval was audited) though the row kept the first's."""
    import sqlite3
    import threading
    import time

    with_lookups(site, partners=[], approval={"tsukuba": "approval"})
    person = residents(site)[0]
    waiting = ask(site, person["family_name"], person["given_name"], person["birth_date"])
    _config, _settings, state = context(site)
    assert state.url.database is not None
    writer = sqlite3.connect(state.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # both read the lookup as waiting before either can write
    outcomes: dict[str, str] = {}

    def approve(approver: str) -> None:
        try:
            _approve(site, waiting.id, approver)
            outcomes[approver] = "approved"
        except PolicyRejected as exc:
            assert "already approved" in exc.message, exc.message
            outcomes[approver] = "refused"

    threads = [threading.Thread(target=approve, args=(a,)) for a in ("goka-suzuki", "goka-tanaka")]
    for thread in threads:
        thread.start()
    time.sleep(2)
    writer.execute("ROLLBACK")
    writer.close()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["approved", "refused"], outcomes
    approvals = [e for e in read_entries(state) if e.action == "lookup.approved" and e.subject == waiting.id]
    assert len(approvals) == 1
