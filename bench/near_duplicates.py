"""Near-duplicate bench: how well the duplicate detector catches edited copies of another post's
screenshot (recall) without flagging distinct posts of the same app layout (false-positive rate), on
the synthetic corpus of tests/factories/screenshots.py (issue 14 §2: goal ≥ 99% recall at ≤ 1%
false positives); then the perceptual-hash lookup against 1,000,000 stored hashes, as a ratio of the
same lookup against 1,000 (median of ~200 lookups each, some of them planted near-duplicates)."""

from __future__ import annotations

import os
import random
import statistics
import time

import sqlalchemy as sa

from bench import harness

BIG = int(os.environ.get("BENCH_NEAR_DUP_ROWS", "1000000"))
SMALL = 1_000
LOOKUPS = 200
TARGET_MS = 50.0
ORIGINALS = int(os.environ.get("BENCH_NEAR_DUP_ORIGINALS", "300"))
DISTINCT = int(os.environ.get("BENCH_NEAR_DUP_DISTINCT", "300"))
RECALL_TARGET, FPR_TARGET = 0.99, 0.01
# Random content-band rows (hashes, halves and their 20 index keys each) added behind the corpus's
# originals for the content lookup's timing: 20 key rows apiece, so fewer than the whole-screen fill.
CONTENT_ROWS = int(os.environ.get("BENCH_NEAR_DUP_CONTENT_ROWS", "100000"))

RAND64 = "((floor(random() * 4294967296)::bigint << 32) | floor(random() * 4294967296)::bigint)"
INSERT_CONTENT = sa.text(f"""
    INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, submitted_at,
                             auto_approve_at, validation_attempts, created_at, content_phash, content_top,
                             content_bottom, content_left, content_right)
    SELECT 'sub_r' || g, 'task_b', 'clm_r' || g, 'grp_b', 'brief_b', 'wrk_b', 'needs_review', now(),
           now() + interval '3 days', 1, now(), {RAND64}, {RAND64}, {RAND64}, {RAND64}, {RAND64}
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
""")
INSERT_CONTENT_KEYS = sa.text("""
    INSERT INTO submission_content_keys (key, submission_id)
    SELECT DISTINCT slot * 65536 + ((hashes[slot / 4 + 1] >> (48 - 16 * (slot % 4))) & 65535)::int, id
    FROM (SELECT id, ARRAY[content_phash, content_top, content_bottom, content_left, content_right] AS hashes
          FROM submissions WHERE id LIKE 'sub_r%') AS rows CROSS JOIN generate_series(0, 19) AS slot
""")

# Random 64-bit hashes and their four 16-bit chunks, computed in SQL: one INSERT … SELECT per batch.
INSERT_HASHES = sa.text("""
    INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, submitted_at,
                             auto_approve_at, validation_attempts, created_at, phash, phash_c0, phash_c1,
                             phash_c2, phash_c3)
    SELECT 'sub_b' || g, 'task_b', 'clm_b' || g, 'grp_b', 'brief_b', 'wrk_b', 'needs_review',
           now(), now() + interval '3 days', 1, now() - make_interval(secs => CAST(:total AS bigint) - g), h,
           ((h >> 48) & 65535)::int, ((h >> 32) & 65535)::int, ((h >> 16) & 65535)::int, (h & 65535)::int
    FROM (SELECT g, ((floor(random() * 4294967296)::bigint << 32)
                     | floor(random() * 4294967296)::bigint) AS h
          FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g) AS hashes
""")


def _fill(app, first: int, last: int, total: int) -> None:
    from marketplace.extensions import db

    with app.app_context():
        step = 250_000
        for start in range(first, last + 1, step):
            db.session.execute(INSERT_HASHES, {"first": start, "last": min(last, start + step - 1), "total": total})
            db.session.commit()
        db.session.execute(sa.text("ANALYZE submissions"))
        db.session.commit()
        db.session.remove()


def _probes(app, rng: random.Random) -> list[int]:
    """Half random hashes, half stored ones with 1-5 bits flipped (planted near-duplicates)."""
    from marketplace.extensions import db
    from marketplace.proofs.checks.screenshot import to_unsigned64

    with app.app_context():
        stored = [to_unsigned64(h) for h in db.session.execute(sa.text(
            "SELECT phash FROM submissions TABLESAMPLE SYSTEM (1) WHERE phash IS NOT NULL LIMIT :n"), {"n": LOOKUPS // 2}).scalars()]
        if len(stored) < LOOKUPS // 2:
            stored = [to_unsigned64(h) for h in db.session.execute(sa.text(
                "SELECT phash FROM submissions WHERE phash IS NOT NULL ORDER BY random() LIMIT :n"), {"n": LOOKUPS // 2}).scalars()]
        db.session.remove()
    probes = [rng.getrandbits(64) for _ in range(LOOKUPS - len(stored))]
    for h in stored:
        for bit in rng.sample(range(64), rng.randint(1, 5)):
            h ^= 1 << bit
        probes.append(h)
    rng.shuffle(probes)
    return probes


def _median_lookup_ms(app, probes: list[int]) -> tuple[float, int]:
    from marketplace.extensions import db
    from marketplace.proofs.validation import find_near_duplicates

    times, found = [], 0
    with app.app_context():
        for h in probes:
            started = time.perf_counter()
            matches = find_near_duplicates(h, threshold=6)
            times.append((time.perf_counter() - started) * 1000)
            found += bool(matches)
        db.session.remove()
    return statistics.median(times), found


def _plan(app, h: int) -> str:
    from marketplace.extensions import db
    from marketplace.proofs.checks.screenshot import chunk_neighbours, phash_chunks, to_signed64

    chunks = phash_chunks(h)
    with app.app_context():
        lines = db.session.execute(sa.text(
            "EXPLAIN SELECT id FROM submissions WHERE (phash_c0 = ANY(CAST(:n0 AS integer[])) "
            "OR phash_c1 = ANY(CAST(:n1 AS integer[])) OR phash_c2 = ANY(CAST(:n2 AS integer[])) "
            "OR phash_c3 = ANY(CAST(:n3 AS integer[]))) AND bit_count((phash # CAST(:h AS bigint))::bit(64)) <= 6"),
            {"h": to_signed64(h), **{f"n{i}": chunk_neighbours(c) for i, c in enumerate(chunks)}}).scalars().all()
        db.session.remove()
    return "\n".join(lines)


def _line(figure: str, what: str, value: float, target: str, met: bool) -> None:
    """One figure on one line, as harness.report prints them."""
    print(f"{'near_duplicates':<18} {figure + ', ' + what:<46} {value * 100:6.2f} %   "
          f"(target {target}) {'ok' if met else 'MISSED'}", flush=True)


def _accuracy():
    """Recall and false-positive rate of the content-band detector, one line each: the stored hash
    of each original against the several probe hashes of each copy and of each distinct post."""
    from marketplace.proofs.checks.screenshot import (
        CONTENT_HAMMING_THRESHOLD,
        CONTENT_VERIFY_THRESHOLD,
        ContentHashes,
        content_hashes,
        is_content_copy,
    )
    from tests.factories import screenshots

    started = time.monotonic()
    data = screenshots.corpus(ORIGINALS, DISTINCT)
    made_s = time.monotonic() - started
    threshold = CONTENT_HAMMING_THRESHOLD

    looked_up: dict[int, ContentHashes] = {}

    def index(originals):
        return [content_hashes(img) for img in originals]

    def lookup(stored, img):
        mine = looked_up.setdefault(id(img), content_hashes(img))
        return {i for i, other in enumerate(stored)
                if is_content_copy(mine.probes, mine.probe_halves, other.stored, other.stored_halves)}

    started = time.monotonic()
    result = screenshots.score(data, index, lookup)
    scored_s = time.monotonic() - started
    _line("recall", f"{ORIGINALS} originals x {len(screenshots.EDITS)} edits", result.recall,
          f"≥ {RECALL_TARGET:.0%}", result.recall >= RECALL_TARGET)
    _line("false positives", f"{DISTINCT} other posts, same layout", result.false_positive_rate,
          f"≤ {FPR_TARGET:.0%}", result.false_positive_rate <= FPR_TARGET)
    harness.note("copies missed by edit: " + ", ".join(f"{name} {n}" for name, n in result.missed.items()))
    harness.note(f"content-band pHash, threshold {threshold} (halves verify up to {CONTENT_VERIFY_THRESHOLD}); corpus drawn in {made_s:.0f} s, "
                 f"scored in {scored_s:.0f} s")
    return ([content_hashes(img) for img in data.originals],
            [(original, looked_up[id(copy)]) for original, _, copy in data.copies],
            [looked_up[id(other)] for other in data.distinct])


def _content_db_path(app, accuracy) -> None:
    """The same corpus through the database: the originals stored as validation stores them (hashes,
    halves, index keys), every copy and other post looked up with validation.find_content_copies
    (the candidate query on the key index, then is_content_copy); then that lookup's median time
    with CONTENT_ROWS random content rows behind them, as a ratio of the time without."""
    from marketplace.extensions import db
    from marketplace.proofs.checks.screenshot import to_signed64
    from marketplace.proofs.validation import (
        content_candidates,
        find_content_copies,
        probe_content_keys,
        stored_content_keys,
    )

    originals, copies, distinct = accuracy
    with app.app_context():
        db.session.execute(sa.text(
            "INSERT INTO submissions (id, task_id, claim_id, group_id, brief_id, worker_id, status, submitted_at, "
            "auto_approve_at, validation_attempts, created_at, facts_seq, content_phash, content_top, content_bottom, "
            "content_left, content_right) VALUES (:id, 'task_b', :id, 'grp_b', 'brief_b', 'wrk_b', 'needs_review', "
            "now(), now() + interval '3 days', 1, now(), :seq, :c, :t, :b, :l, :r)"),
            [{"id": f"sub_c{i}", "seq": -1 - i, "c": to_signed64(h.stored),
              **dict(zip("tblr", (to_signed64(x) for x in h.stored_halves), strict=True))}
             for i, h in enumerate(originals)])
        db.session.execute(sa.text("INSERT INTO submission_content_keys (key, submission_id) VALUES (:k, :id) "
                                   "ON CONFLICT DO NOTHING"),
                           [{"k": k, "id": f"sub_c{i}"} for i, h in enumerate(originals) for k in stored_content_keys(h)])
        db.session.execute(sa.text("ANALYZE submissions; ANALYZE submission_content_keys"))
        db.session.commit()

        def timed(hashes):
            started = time.perf_counter()
            found = find_content_copies(hashes)
            return (time.perf_counter() - started) * 1000, {sub_id for sub_id, _, _ in found}

        small, hits = [], 0
        for original, hashes in copies:
            ms, found = timed(hashes)
            small.append(ms)
            hits += f"sub_c{original}" in found
        flagged = 0
        for hashes in distinct:
            ms, found = timed(hashes)
            small.append(ms)
            flagged += bool(found)
        keys = statistics.median(len(probe_content_keys(h)) for _, h in copies)
        db.session.remove()
    _line("recall (database)", "stored rows, key index + is_content_copy", hits / len(copies),
          f"≥ {RECALL_TARGET:.0%}", hits / len(copies) >= RECALL_TARGET)
    _line("false positives (database)", f"{len(distinct)} other posts", flagged / len(distinct),
          f"≤ {FPR_TARGET:.0%}", flagged / len(distinct) <= FPR_TARGET)

    started = time.monotonic()
    with app.app_context():
        step = 50_000
        for first in range(1, CONTENT_ROWS + 1, step):
            db.session.execute(INSERT_CONTENT, {"first": first, "last": min(CONTENT_ROWS, first + step - 1)})
            db.session.commit()
        db.session.execute(INSERT_CONTENT_KEYS)
        db.session.execute(sa.text("ANALYZE submissions; ANALYZE submission_content_keys"))
        db.session.commit()
        fill_s = time.monotonic() - started
        sample = [h for _, h in copies[:: max(1, len(copies) // LOOKUPS)]][:LOOKUPS]
        big = []
        for hashes in sample:
            ms, _ = timed(hashes)
            big.append(ms)
        candidates = statistics.median(db.session.execute(
            sa.select(sa.func.count()).select_from(content_candidates(h).subquery())).scalar_one()
            for h in sample[:20])
        db.session.remove()
    big_ms, small_ms = statistics.median(big), statistics.median(small)
    harness.report("near_duplicates", f"content lookup, {CONTENT_ROWS:,} rows", big_ms, small_ms, unit="ms",
                   baseline_name=f"{len(originals)} rows")
    harness.note(f"content lookup: median {big_ms:.2f} ms at {CONTENT_ROWS + len(originals):,} stored rows, "
                 f"{small_ms:.2f} ms at {len(originals)}; median {keys:.0f} probe keys a lookup, {candidates:.0f} "
                 f"candidate rows at {CONTENT_ROWS:,} ({100 * candidates / CONTENT_ROWS:.2f}% of them); "
                 f"filling took {fill_s:.0f} s")


def main() -> None:
    from marketplace.extensions import db

    accuracy = _accuracy()

    rng = random.Random(6)
    with harness.scratch_database() as url:
        app = harness.migrated_app(url)
        with app.app_context():
            # Scratch database only: the hashes need no brief, claim or worker rows behind them.
            for (name,) in db.session.execute(sa.text(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'submissions'::regclass AND contype = 'f'")):
                db.session.execute(sa.text(f'ALTER TABLE submissions DROP CONSTRAINT "{name}"'))
            db.session.commit()
            db.session.remove()

        _content_db_path(app, accuracy)
        _fill(app, 1, SMALL, BIG)
        small_ms, small_found = _median_lookup_ms(app, _probes(app, rng))
        started = time.monotonic()
        _fill(app, SMALL + 1, BIG, BIG)
        fill_s = time.monotonic() - started
        big_ms, big_found = _median_lookup_ms(app, _probes(app, rng))
        plan = _plan(app, rng.getrandbits(64))
        with app.app_context():
            db.engine.dispose()

    harness.report("near_duplicates", f"lookup, {BIG:,} hashes", big_ms, small_ms, unit="ms",
                   baseline_name=f"{SMALL:,} hashes")
    verdict = "ok" if big_ms < TARGET_MS else "MISSED"
    harness.note(f"median {big_ms:.2f} ms at {BIG:,} (target < {TARGET_MS:g} ms: {verdict}), "
                 f"{small_ms:.2f} ms at {SMALL:,}; planted near-duplicates found {big_found} / {small_found} "
                 f"of {LOOKUPS} lookups; filling {BIG - SMALL:,} rows took {fill_s:.0f} s")
    harness.note("plan uses the chunk indexes: " + ("yes (BitmapOr)" if "BitmapOr" in plan else "NO"))
    for line in plan.splitlines()[:8]:
        harness.note("  " + line)


if __name__ == "__main__":
    main()
