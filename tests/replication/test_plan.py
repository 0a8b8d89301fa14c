"""Commit order, what is copied, and the deletion delay: pure functions, no storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backup.manifest import Manifest, SnapshotEntry, index_set_digest
from replication.plan import PHASES, decide_deletions, missing_referenced, phase_of, plan_copy
from storage.backend import ObjectInfo
from storage.naming import content_name

H = {n: f"{n:x}" * 64 for n in range(1, 10)}  # 64-hex names
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def listing(**sizes: int) -> dict[str, ObjectInfo]:
    return {k: ObjectInfo(k, v, 0.0) for k, v in sizes.items()}


def objs(*pairs: tuple[str, int]) -> dict[str, ObjectInfo]:
    return {k: ObjectInfo(k, v, 0.0) for k, v in pairs}


def manifest(snapshots: list[str], indexes: list[str], packs: dict[str, int]) -> Manifest:
    return Manifest(
        repository="ab" * 16,
        sequence=5,
        time="2026-06-01T00:00:00+00:00",
        public_key="cd" * 32,
        config_sha256="0" * 64,
        keys={},
        snapshots=tuple(SnapshotEntry(s, "2026-06-01T00:00:00+00:00", "goka-juki") for s in snapshots),
        indexes=tuple(indexes),
        index_set_sha256=index_set_digest(indexes),
        packs=packs,
    )


def test_phases_follow_the_commit_order() -> None:
    assert PHASES == ("repository", "wal", "packs", "indexes", "snapshots")
    assert phase_of("config") == phase_of("keys/abc") == "repository"
    assert phase_of(f"data/{H[1][:2]}/{H[1]}") == phase_of(f"meta/{H[2][:2]}/{H[2]}") == "packs"
    assert phase_of(f"index/{H[3]}") == "indexes"
    assert phase_of(f"snapshots/{H[4]}") == "snapshots"
    assert phase_of(f"wal/{H[5][:32]}/000000010000000000000003/{H[5]}") == "wal"
    # prune's own state and the manifest are not copied in a phase
    for key in ("tombstones/x", "locks/prune", "manifest", "stray"):
        assert phase_of(key) is None


def test_content_names_must_be_sha256_in_the_right_directory() -> None:
    assert content_name(f"data/{H[1][:2]}/{H[1]}") == H[1]
    assert content_name(f"index/{H[2]}") == H[2]
    assert content_name(f"data/00/{H[1]}") is None  # wrong fan-out directory
    assert content_name("index/not-a-hash") is None
    assert content_name("config") is None
    assert content_name(f"wal/{H[5][:32]}/000000010000000000000003/{H[5]}") == H[5]


def test_plan_copies_only_what_the_target_lacks_in_order() -> None:
    pack1, pack2 = f"data/{H[1][:2]}/{H[1]}", f"meta/{H[2][:2]}/{H[2]}"
    src = objs(
        ("config", 10),
        ("keys/k1", 20),
        (pack1, 100),
        (pack2, 50),
        (f"index/{H[3]}", 5),
        (f"snapshots/{H[4]}", 3),
        ("tombstones/" + H[5], 7),
        ("locks/prune", 1),
        ("manifest", 9),
    )
    tgt = objs(("config", 10), (pack1, 100))
    plan = plan_copy(src, tgt, None)
    assert [i.key for i in plan.phases["repository"]] == ["keys/k1"]
    assert [i.key for i in plan.phases["packs"]] == [pack2]
    assert [i.key for i in plan.phases["indexes"]] == [f"index/{H[3]}"]
    assert [i.key for i in plan.phases["snapshots"]] == [f"snapshots/{H[4]}"]
    assert plan.present == 2
    assert plan.bytes == 20 + 50 + 5 + 3


def test_damaged_content_objects_are_recopied_but_fixed_names_never_overwritten() -> None:
    pack = f"data/{H[1][:2]}/{H[1]}"
    src = objs(("config", 10), ("keys/k1", 20), (pack, 100))
    tgt = objs(("config", 10), ("keys/k1", 21), (pack, 60))
    plan = plan_copy(src, tgt, None)
    assert [i.key for i in plan.phases["packs"]] == [pack]
    assert plan.conflicts == ["keys/k1"]
    assert plan.phases["repository"] == []


def test_only_signed_snapshots_are_copied() -> None:
    signed, planted = H[4], H[5]
    src = objs((f"snapshots/{signed}", 3), (f"snapshots/{planted}", 3))
    plan = plan_copy(src, {}, manifest([signed], [], {}))
    assert [i.key for i in plan.phases["snapshots"]] == [f"snapshots/{signed}"]
    assert [i.key for i in plan.unsigned] == [f"snapshots/{planted}"]


def test_objects_gone_at_the_source_are_deletion_candidates_except_config_and_manifest() -> None:
    src = objs(("config", 1))
    tgt = objs(("config", 1), ("manifest", 2), (f"index/{H[3]}", 5), ("keys/old", 3), ("locks/prune", 1))
    assert plan_copy(src, tgt, None).extra_at_target == [f"index/{H[3]}", "keys/old"]


def test_truncation_is_an_object_the_manifest_names_that_neither_site_holds() -> None:
    pack = f"data/{H[1][:2]}/{H[1]}"
    m = manifest([H[4]], [H[3]], {pack: 100})
    complete = objs((pack, 100), (f"index/{H[3]}", 5), (f"snapshots/{H[4]}", 3))
    assert missing_referenced(m, complete, {}) == {}
    assert missing_referenced(m, {}, complete) == {}
    truncated = dict(complete)
    del truncated[f"index/{H[3]}"]
    assert set(missing_referenced(m, truncated, {})) == {f"index/{H[3]}"}
    short = dict(complete)
    short[pack] = ObjectInfo(pack, 99, 0.0)
    assert set(missing_referenced(m, short, {})) == {pack}
    assert missing_referenced(m, short, {pack: ObjectInfo(pack, 100, 0.0)}) == {}


def test_deletions_wait_for_the_delay_and_never_touch_protected_or_locked_objects() -> None:
    delay = timedelta(days=7)
    pending = {
        "old": NOW - timedelta(days=8),
        "young": NOW - timedelta(days=1),
        "locked": NOW - timedelta(days=30),
        "referenced": NOW - timedelta(days=30),
        "came-back": NOW - timedelta(days=30),
    }
    locks = {"locked": NOW + timedelta(days=3), "old": NOW - timedelta(days=1)}
    decision = decide_deletions(
        ["old", "young", "locked", "referenced", "brand-new"], pending, {"referenced"}, locks, NOW, delay
    )
    assert decision.due == ["old"]
    assert decision.newly_missing == ["brand-new"]
    assert decision.retained == ["locked"]
    assert decision.cleared == ["came-back", "referenced"]


def test_zero_delay_still_needs_one_run_to_notice() -> None:
    first = decide_deletions(["x"], {}, set(), {}, NOW, timedelta(0))
    assert first.due == [] and first.newly_missing == ["x"]
    second = decide_deletions(["x"], {"x": NOW}, set(), {}, NOW, timedelta(0))
    assert second.due == ["x"]
