"""Reports: spend, clicks, conversions, CPA/ROAS per group, worker, day and brief checked against numbers
worked out by hand; verdicts; the 3× stop rule; the content bank as JSON and CSV."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from tests.factories import auth, brief_payload, live_brief, make_admin, sign_up_brand
from tests.factories.tracking import (
    approve,
    claims,
    click,
    conversion,
    post_conversions,
    run_jobs,
    workers,
)

CAPTION = {"kind": "caption", "quantity": 10, "unit_price_cents": 100, "max_per_worker": 5,
           "proof": {"text": {"min_length": 5, "max_length": 300}}}
EVIL = '=HYPERLINK("http://evil.example/steal","Click me")'
TRICKY = 'Lighter shoe, same grip: "really" light\nsecond line #ad'


@pytest.fixture
def rules(app, monkeypatch):
    """Small thresholds so a handful of conversions decide (the defaults are 10 and 5000 cents)."""
    monkeypatch.setitem(app.config, "VERDICT_MIN_CONVERSIONS", 3)
    monkeypatch.setitem(app.config, "STOP_RULE_MIN_SPEND_CENTS", 300)
    return app.config


def by(rows: list[dict], key: str) -> dict:
    return {row[key]: row for row in rows}


def test_brief_to_clicks_to_conversions_to_report_and_csv(app, client, standin, rules, monkeypatch):
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, target_cpa_cents=30,
                       landing_url="https://shop.example.com/spring?ref=newsletter&utm_source=old#buy",
                       task_groups=[{**CAPTION, "name": "A"}, {**CAPTION, "name": "B"}])
    group_a, group_b = (g["id"] for g in brief["task_groups"])
    (w1, t1), (w2, t2), (w3, t3) = workers(client, 3)

    # Six tasks of 100 cents (+10 fee): A to w1 ×2 and w2 ×1; B to w2 ×1 and w3 ×2. All approved.
    a1, a2 = claims(client, t1, group_a, 2)
    (a3,) = claims(client, t2, group_a, 1)
    (b1,) = claims(client, t2, group_b, 1)
    b2, b3 = claims(client, t3, group_b, 2)
    approve(app, [a1, a2, a3, b1, b2, b3], texts=[EVIL, TRICKY, "caption three #ad", "caption four #ad",
                                                  "caption five #ad", "+1 caption six #ad"])

    # Clicks through the real tracked links: A 5+3+2 = 10, B 4+1+1 = 6.
    for held, n in ((a1, 5), (a2, 3), (a3, 2), (b1, 4), (b2, 1), (b3, 1)):
        click(client, held["tracked_code"], n)
    first = client.get(f"/t/{a1['tracked_code']}", headers={"User-Agent": "curl"})  # a 6th on a1, checked below
    assert first.status_code == 302
    location = urlsplit(first.headers["Location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == (
        "https", "shop.example.com", "/spring", "buy")
    query = parse_qs(location.query)
    assert query["ref"] == ["newsletter"] and query["utm_source"] == ["marketplace"]
    assert query["utm_medium"] == ["caption"] and query["utm_campaign"] == [brief["id"]]
    assert query["utm_content"] == [a1["task"]["id"]] and query["mkt_click"][0].startswith("clk_")

    # Conversions: A: a1 3 × 1000, a2 1 × 500, a3 2 × 250; B: b1 1 × 1000, b2 2 × 200, b3 none.
    single = client.post("/v1/conversions", headers=auth(brand_key),
                         json=conversion(a1["tracked_code"], "order-1", 1000, "2026-03-01T12:00:00Z"))
    assert single.status_code == 201, single.get_json()
    items = [
        conversion(a1["tracked_code"], "order-2", 1000, "2026-03-01T13:00:00Z"),
        conversion(a1["tracked_code"], "order-3", 1000, "2026-03-01T14:00:00Z"),
        conversion(a2["tracked_code"], "order-4", 500, "2026-03-02T09:00:00Z"),
        conversion(a3["tracked_code"], "order-5", 250, "2026-03-02T09:00:00Z"),
        conversion(a3["tracked_code"], "order-6", 250, "2026-03-02T09:00:00Z"),
        conversion(b1["tracked_code"], "order-7", 1000, "2026-03-02T09:00:00Z"),
        conversion(b2["tracked_code"], "order-8", 200, "2026-03-02T09:00:00Z"),
        conversion(b2["tracked_code"], "order-9", 200, "2026-03-02T09:00:00Z", currency="usd"),
    ]
    assert post_conversions(client, brand_key, items)["created"] == 8
    replay = post_conversions(client, brand_key, items)  # a retried upload counts once
    assert (replay["created"], replay["duplicates"]) == (0, 8)

    report = client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(brand_key))
    assert report.status_code == 200, report.get_json()
    body = report.get_json()

    # By hand: every approval costs 100 + 10 = 110 cents; A and B spend 330 each.
    groups = by(body["groups"], "group_id")
    assert {k: groups[group_a][k] for k in ("spend_cents", "approved_actions", "clicks", "conversions",
                                            "revenue_cents", "cost_per_action_cents", "cpa_cents", "roas")} == {
        "spend_cents": 330, "approved_actions": 3, "clicks": 11, "conversions": 6, "revenue_cents": 4000,
        "cost_per_action_cents": "110.00", "cpa_cents": "55.00", "roas": "12.1212"}  # 4000/330 = 12.12121…
    assert {k: groups[group_b][k] for k in ("spend_cents", "approved_actions", "clicks", "conversions",
                                            "revenue_cents", "cpa_cents", "roas")} == {
        "spend_cents": 330, "approved_actions": 3, "clicks": 6, "conversions": 3, "revenue_cents": 1400,
        "cpa_cents": "110.00", "roas": "4.2424"}  # 1400/330 = 4.24242…
    assert groups[group_b]["over_stop_threshold"] is True  # 110 > 3 × 30 after 330 ≥ 300 spent
    assert groups[group_a]["over_stop_threshold"] is False  # 55 ≤ 90

    assert body["totals"] == {"spend_cents": 660, "approved_actions": 6, "clicks": 17, "conversions": 9,
                              "revenue_cents": 5400, "cost_per_action_cents": "110.00",
                              "cpa_cents": "73.33", "roas": "8.1818"}  # 660/9 = 73.333…, 5400/660 = 8.1818…

    people = by(body["workers"], "worker_id")
    assert {w: (people[w]["spend_cents"], people[w]["clicks"], people[w]["conversions"], people[w]["revenue_cents"],
                people[w]["cpa_cents"], people[w]["roas"], people[w]["conversions_per_approved_task"])
            for w in people} == {
        w1["id"]: (220, 9, 4, 3500, "55.00", "15.9091", "2.0000"),   # 3500/220 = 15.90909…
        w2["id"]: (220, 6, 3, 1500, "73.33", "6.8182", "1.5000"),    # 220/3 = 73.33…, 1500/220 = 6.81818…
        w3["id"]: (220, 2, 2, 400, "110.00", "1.8182", "1.0000"),    # 400/220 = 1.81818…
    }
    assert body["top_performers"] == [w1["id"]]  # top 20% of 3, rounded up: one worker
    assert body["top_workers"] == [w1["id"]]  # the lowest CPA: 55
    assert people[w1["id"]]["top_performer"] and not people[w3["id"]]["top_performer"]

    # A's CPA (55) is 50% below B's (110), both have ≥ 3 conversions: A wins.
    (verdict,) = body["verdicts"]
    assert verdict["outcome"] == "winner" and verdict["winner_group_id"] == group_a
    assert verdict["cpa_difference_percent"] == "50.00"

    daily = by(body["daily"], "date")
    assert daily["2026-03-01"]["conversions"] == 3 and daily["2026-03-01"]["revenue_cents"] == 3000
    assert daily["2026-03-02"]["conversions"] == 6 and daily["2026-03-02"]["revenue_cents"] == 2400
    assert daily["2026-03-01"]["spend_cents"] == 0 and daily["2026-03-01"]["cpa_cents"] == "0.00"
    today = [d for d in body["daily"] if d["date"] not in ("2026-03-01", "2026-03-02")]
    assert sum(d["spend_cents"] for d in today) == 660 and sum(d["clicks"] for d in today) == 17
    assert all(d["conversions"] == 0 and d["cpa_cents"] is None for d in today)

    # The stop rule job, queued by the conversions, pauses B (and only B) and says why.
    run_jobs(app)
    shown = client.get(f"/v1/briefs/{brief['id']}", headers=auth(brand_key)).get_json()
    reasons = {g["id"]: g["paused_reason"] for g in shown["task_groups"]}
    assert reasons[group_a] is None
    assert "Stop rule" in reasons[group_b] and "110.00" in reasons[group_b] and "3x" in reasons[group_b]
    refused = client.post(f"/v1/task-groups/{group_b}/claim", headers=auth(t1))
    assert refused.status_code == 409 and "paused" in refused.get_json()["detail"]
    again = client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(brand_key)).get_json()
    assert by(again["groups"], "group_id")[group_b]["paused_reason"] == reasons[group_b]

    # With the default minimum of 10 conversions, nothing is decided yet.
    monkeypatch.setitem(app.config, "VERDICT_MIN_CONVERSIONS", 10)
    undecided = client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(brand_key)).get_json()["verdicts"][0]
    assert undecided["outcome"] == "undecided" and undecided["winner_group_id"] is None

    # The content bank as CSV, parsed back: every approved asset, formulas defused, quoting intact.
    exported = client.get(f"/v1/briefs/{brief['id']}/assets?format=csv", headers=auth(brand_key))
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.is_streamed or exported.headers.get("Transfer-Encoding") == "chunked" or exported.data
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True), newline="")))
    assert len(rows) == 6
    texts = by(rows, "text")
    assert EVIL not in texts and "'" + EVIL in texts
    assert TRICKY in texts and "'+1 caption six #ad" in texts
    evil = texts["'" + EVIL]
    assert evil["tracked_link"].endswith(f"/t/{a1['tracked_code']}")
    assert (evil["clicks"], evil["conversions"], evil["revenue_cents"]) == ("6", "3", "3000")
    assert evil["worker_id"] == w1["id"] and evil["group_id"] == group_a and evil["group_kind"] == "caption"
    assert sum(int(r["conversions"]) for r in rows) == 9 and sum(int(r["clicks"]) for r in rows) == 17


def test_tie_and_undecided_verdicts_between_variants(app, client, standin, rules):
    _, brand_key = sign_up_brand(client)
    clip = {**CAPTION, "kind": "clip", "proof": {}}
    # C and D are caption variants, E and F clip variants. D costs 105 + 11 fee (10.5 rounds up).
    brief = live_brief(client, brand_key, standin, target_cpa_cents=None, task_groups=[
        {**CAPTION, "name": "C"}, {**CAPTION, "name": "D", "unit_price_cents": 105},
        {**clip, "name": "E"}, {**clip, "name": "F"}])
    c, d, e, f = (g["id"] for g in brief["task_groups"])
    (_, token), = workers(client, 1)
    held = {gid: claims(client, token, gid, n) for gid, n in ((c, 2), (d, 2), (e, 2), (f, 3))}
    approve(app, [h for hs in held.values() for h in hs])
    wanted = {c: 4, d: 4, e: 4, f: 5}  # C 220/4 = 55, D 232/4 = 58; E 220/4 = 55, F 330/5 = 66
    items = [conversion(held[gid][0]["tracked_code"], f"{gid}-{i}", 100) for gid, n in wanted.items() for i in range(n)]
    post_conversions(client, brand_key, items)

    body = client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(brand_key)).get_json()
    verdicts = {v["kind"]: v for v in body["verdicts"]}
    assert set(verdicts) == {"caption", "clip"}
    # (58 − 55) / 58 = 5.17% ≤ 10%: a tie.
    assert verdicts["caption"]["outcome"] == "tie" and verdicts["caption"]["winner_group_id"] is None
    assert verdicts["caption"]["cpa_difference_percent"] == "5.17"
    # (66 − 55) / 66 = 16.67%: more than a tie, less than a win.
    assert verdicts["clip"]["outcome"] == "undecided" and verdicts["clip"]["cpa_difference_percent"] == "16.67"
    groups = by(body["groups"], "group_id")
    assert groups[d]["spend_cents"] == 232 and groups[d]["cpa_cents"] == "58.00"
    assert all(not g["over_stop_threshold"] for g in body["groups"])  # no target, no stop rule


def test_stop_rule_waits_for_the_minimum_spend_and_counts_no_conversions_as_unbounded(app, client, standin, rules):
    from marketplace.tracking import service

    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, target_cpa_cents=30,
                       task_groups=[{**CAPTION, "name": "cheap"}, {**CAPTION, "name": "silent"}])
    cheap, silent = (g["id"] for g in brief["task_groups"])
    (_, token), = workers(client, 1)
    approve(app, claims(client, token, cheap, 2) + claims(client, token, silent, 2))  # 220 each, under 300
    with app.app_context():
        assert service.apply_stop_rule([brief["id"]]) == []  # below the minimum spend nothing is judged
    approve(app, claims(client, token, silent, 1))  # silent: 330 spent, no conversion: CPA unbounded
    with app.app_context():
        assert service.apply_stop_rule([brief["id"]]) == [silent]
        assert service.apply_stop_rule([brief["id"]]) == []  # running it again changes nothing
    groups = by(client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(brand_key)).get_json()["groups"],
                "group_id")
    assert "unbounded" in groups[silent]["paused_reason"] and groups[cheap]["paused_reason"] is None
    assert groups[silent]["cpa_cents"] is None and groups[silent]["roas"] == "0.0000"
    # The brand hears of it as brief.paused, with the stop rule's reason and the group it paused (once).
    paused = client.get("/v1/events", query_string={"type": "brief.paused"}, headers=auth(brand_key)).get_json()
    [event] = paused["data"]
    assert event["data"]["object"]["paused_group_id"] == silent
    assert event["data"]["object"]["reason"].startswith("Stop rule:") and "unbounded" in event["data"]["object"]["reason"]


def test_periodic_sweep_applies_the_stop_rule_to_running_briefs(app, client, standin, rules):
    from workers.tracking import sweep_stop_rule

    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, target_cpa_cents=30, task_groups=[CAPTION])
    (_, token), = workers(client, 1)
    approve(app, claims(client, token, brief["task_groups"][0]["id"], 3))
    with app.app_context():
        assert sweep_stop_rule() == [brief["task_groups"][0]["id"]]


def test_another_brands_report_and_assets_are_404_and_admins_see_every_brief(app, client, standin, runner):
    _, owner_key = sign_up_brand(client)
    _, other_key = sign_up_brand(client, "Other")
    brief = live_brief(client, owner_key, standin, task_groups=[CAPTION])
    for path in (f"/v1/briefs/{brief['id']}/report", f"/v1/briefs/{brief['id']}/assets",
                 f"/v1/briefs/{brief['id']}/assets?format=csv", "/v1/briefs/brief_nope/report"):
        response = client.get(path, headers=auth(other_key))
        assert response.status_code == 404 and response.content_type == "application/problem+json", path
    admin_key = make_admin(runner)
    report = client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(admin_key))
    assert report.status_code == 200
    empty = report.get_json()
    assert empty["totals"]["cpa_cents"] is None and empty["totals"]["roas"] is None
    assert empty["groups"][0]["spend_cents"] == 0 and empty["verdicts"] == [] and empty["daily"] == []
    (_, token), = workers(client, 1)
    assert client.get(f"/v1/briefs/{brief['id']}/report", headers=auth(token)).status_code == 403
    assert client.get(f"/v1/briefs/{brief['id']}/report").status_code == 401


def test_assets_json_pages_with_a_cursor_and_links_screenshots(app, client, standin):
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[CAPTION])
    (worker, token), = workers(client, 1)
    held = claims(client, token, brief["task_groups"][0]["id"], 5)
    ids = approve(app, held, links=[f"https://tiktok.com/@sam/video/{i}" for i in range(5)])
    with app.app_context():
        from marketplace.extensions import db

        db.session.execute(sa.text("UPDATE submissions SET screenshot_key = 'k' WHERE id = :id"), {"id": ids[0]})
        db.session.commit()
    click(client, held[0]["tracked_code"], 2)
    seen, cursor = [], None
    while True:
        url = f"/v1/briefs/{brief['id']}/assets?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=auth(brand_key)).get_json()
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [a["submission_id"] for a in seen] == list(reversed(ids))  # newest first, each once
    first = by(seen, "submission_id")[ids[0]]
    assert first["screenshot_url"].endswith(f"/v1/submissions/{ids[0]}/screenshot")
    assert first["clicks"] == 2 and first["worker_id"] == worker["id"] and first["link"].startswith("https://")
    assert by(seen, "submission_id")[ids[1]]["screenshot_url"] is None
    bad = client.get(f"/v1/briefs/{brief['id']}/assets?format=xml", headers=auth(brand_key))
    assert bad.status_code == 422


def test_assets_csv_streams_every_asset_once_across_chunks(app, client, standin, monkeypatch):
    from marketplace.tracking import assets

    monkeypatch.setattr(assets, "CSV_CHUNK", 2)  # five assets: chunks of 2, 2 and 1
    _, brand_key = sign_up_brand(client)
    brief = live_brief(client, brand_key, standin, task_groups=[CAPTION])
    (_, token), = workers(client, 1)
    ids = approve(app, claims(client, token, brief["task_groups"][0]["id"], 5))
    response = client.get(f"/v1/briefs/{brief['id']}/assets?format=csv", headers=auth(brand_key))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["submission_id"] for row in rows] == list(reversed(ids))  # newest first, each once


def test_cpa_and_roas_are_exact_and_rounded_half_up_only_for_display():
    from marketplace.tracking.reports import (
        Figures,
        cents_ratio,
        plain_ratio,
        top_performers,
        top_workers,
        verdict,
    )

    assert cents_ratio(660, 9) == "73.33" and cents_ratio(1, 8) == "0.13" and cents_ratio(5, 0) is None
    assert plain_ratio(2, 3) == "0.6667" and plain_ratio(1, 0) is None and plain_ratio(10**15, 3) == "333333333333333.3333"
    a = Figures("a", spend_cents=800, conversions=10)
    b = Figures("b", spend_cents=1000, conversions=10)  # 80 vs 100: exactly 20% lower
    assert verdict(a, b, 10)["outcome"] == "winner" and verdict(b, a, 10)["winner_group_id"] == "a"
    assert verdict(a, b, 11)["outcome"] == "undecided"
    c = Figures("c", spend_cents=900, conversions=10)  # 90 vs 100: exactly 10%
    assert verdict(c, b, 10)["outcome"] == "tie"
    d = Figures("d", spend_cents=899, conversions=10)  # 10.1%
    assert verdict(d, b, 10)["outcome"] == "undecided"
    assert Fraction(800, 10) == a.cpa
    people = [Figures(f"w{i}", approved=2, conversions=i) for i in range(10)]
    assert top_performers(people) == ["w9", "w8"]  # 20% of 10
    assert top_performers([Figures("x", approved=1, conversions=0)]) == []

    # top_workers: by CPA, lowest first; 20% of 10 with approved work is two.
    spenders = [Figures(f"s{i}", spend_cents=100 * (i + 1), approved=1, conversions=1) for i in range(10)]
    assert top_workers(spenders, {}) == ["s0", "s1"]
    # The same CPA: the higher approval rate first, none yet last; a tie with the last one in is in.
    same = [Figures(k, spend_cents=100, approved=1, conversions=1) for k in ("a", "b", "c", "d", "e")]
    assert top_workers(same, {"a": 0.5, "b": 0.9, "c": None, "d": 0.5, "e": 0.7}) == ["b"]
    assert top_workers(same[:2] + [Figures("z", approved=3)] * 3, {"a": 0.8, "b": 0.8}) == ["a", "b"]
    # No conversions, no CPA: never a top worker, however cheap.
    assert top_workers([Figures("x", approved=1, conversions=0)], {}) == []


def test_a_brief_without_target_cpa_is_never_stopped(app, client, standin, rules):
    from marketplace.tracking import service

    _, brand_key = sign_up_brand(client)
    payload = brief_payload(target_cpa_cents=None, task_groups=[CAPTION])
    created = client.post("/v1/briefs", json=payload, headers=auth(brand_key)).get_json()
    assert created["target_cpa_cents"] is None
    with app.app_context():
        assert service.apply_stop_rule([created["id"]]) == []
        assert created["id"] not in service.stop_rule_candidates()
