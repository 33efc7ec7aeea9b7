"""suggest: candidates, exclusions, scores, order and the reasons given."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.errors import UnknownOrganisation
from matching.ranking import MODEL_VERSION, WEIGHTS, Exposure, suggest

FAIR = "Chiyoda matching fair 2026"


def alliance(log, *extra):
    """Return a small alliance: member m, two suppliers, a buyer, a stranger."""
    return log.build(
        [
            log.register(
                "m",
                name="佐藤工業株式会社",
                name_en="Sato Kogyo",
                ward="13101",
                needs=["led_lighting", "hvac"],
                offers=["recycling"],
            ),
            log.register(
                "s-both",
                name="神田設備株式会社",
                name_en="Kanda Setsubi",
                ward="13112",
                offers=["led_lighting", "hvac"],
            ),
            log.register(
                "s-led", name="中央電気株式会社", ward="13102", offers=["led_lighting"]
            ),
            log.register("b-rec", name="墨田精工", ward="13107", needs=["recycling"]),
            log.register("other", offers=["solar"], needs=["solar"]),
            *extra,
        ]
    )


def ids(suggestions):
    return [s.candidate_id for s in suggestions]


def reason(suggestion, kind):
    return next(r for r in suggestion.reasons if r.kind == kind)


def by_id(suggestions, candidate_id):
    return next(s for s in suggestions if s.candidate_id == candidate_id)


def test_suggest_offers_only_complementary_orgs_and_never_the_member(log):
    graph = alliance(log)

    result = suggest(graph, "m", now=log.now)

    assert set(ids(result)) == {"s-both", "s-led", "b-rec"}


def test_suggest_cold_start_scores_fit_ward_credential_and_prior(log):
    graph = alliance(log, log.credential("s-led", "iso_14001"))

    result = suggest(graph, "m", now=log.now)

    assert [(s.candidate_id, s.score) for s in result] == [
        ("b-rec", 0.32),  # 0.30 * 1 + 0.08 * 1/4
        ("s-both", 0.32),  # 0.30 * 1 + 0.08 * 1/4; tie broken by id
        ("s-led", 0.305),  # 0.30 * 1/2 + 0.09 * 1/2 + 0.09 * 4/4 + 0.08 * 1/4
    ]
    kinds = {r.kind for s in result for r in s.reasons}
    assert kinds == {"fit", "ward", "credential", "track_record"}


def test_suggest_excludes_the_members_suppliers(log):
    graph = alliance(log, log.link("m", "s-led"))

    result = suggest(graph, "m", now=log.now)

    assert "s-led" not in ids(result)


def test_suggest_offers_a_members_buyer_only_as_its_supplier(log):
    graph = alliance(
        log,
        log.register("b-both", offers=["hvac"], needs=["recycling"]),
        log.link("b-rec", "m"),
        log.link("b-both", "m"),
    )

    result = suggest(graph, "m", now=log.now)

    assert "b-rec" not in ids(result)  # it only fits as a buyer
    assert by_id(result, "b-both").role == "supplier"
    assert by_id(result, "b-both").categories == ["hvac"]


def test_suggest_excludes_a_pair_declined_within_180_days_both_ways(log):
    graph = alliance(
        log,
        log.suggested("m1", "m", "s-led", at=log.ago(200)),
        log.declined("m1", "m", at=log.ago(179)),
    )

    for_member = suggest(graph, "m", now=log.now)
    for_candidate = suggest(graph, "s-led", now=log.now)

    assert "s-led" not in ids(for_member)
    assert "m" not in ids(for_candidate)


def test_suggest_offers_again_a_pair_declined_more_than_180_days_ago(log):
    graph = alliance(
        log,
        log.suggested("m1", "m", "s-led", at=log.ago(200)),
        log.declined("m1", "m", at=log.ago(181)),
    )

    result = suggest(graph, "m", now=log.now)

    assert "s-led" in ids(result)


def test_suggest_ignores_a_decline_after_now(log):
    graph = alliance(
        log,
        log.suggested("m1", "m", "s-led", at=log.ago(20)),
        log.declined("m1", "m", at=log.ago(1)),
    )

    result = suggest(graph, "m", now=log.ago(10))

    assert "s-led" in ids(result)


def test_suggest_unknown_member_raises(log):
    graph = alliance(log)

    with pytest.raises(UnknownOrganisation):
        suggest(graph, "nobody", now=log.now)


def test_suggest_placeholder_member_raises_and_placeholder_is_never_suggested(log):
    graph = alliance(log, log.attend("m", "fair"), log.attend("ghost", "fair"))

    result = suggest(graph, "m", now=log.now)

    assert "ghost" not in ids(result)
    with pytest.raises(UnknownOrganisation):
        suggest(graph, "ghost", now=log.now)


def test_suggest_member_with_no_needs_or_offers_gets_nothing(log):
    graph = alliance(log, log.register("idle"))

    result = suggest(graph, "idle", now=log.now)

    assert result == []


def test_suggest_fit_reason_names_the_capabilities_the_member_needs(log):
    graph = alliance(log)

    result = suggest(graph, "m", now=log.now)

    fit = reason(by_id(result, "s-both"), "fit")
    assert (
        fit.text_en == "Offers high-efficiency HVAC and LED retrofit, which you need."
    )
    assert (
        fit.text_ja == "貴社が必要とする高効率空調、LED照明への更新を提供しています。"
    )
    assert by_id(result, "s-both").categories == ["hvac", "led_lighting"]


def test_suggest_buyer_candidate_is_explained_as_a_buyer(log):
    graph = alliance(log)

    result = suggest(graph, "m", now=log.now)

    buyer = by_id(result, "b-rec")
    assert (buyer.role, buyer.categories) == ("buyer", ["recycling"])
    assert reason(buyer, "fit").text_en == "Needs recycling, which you offer."
    assert (
        reason(buyer, "fit").text_ja == "貴社が提供するリサイクルを必要としています。"
    )


def test_suggest_shared_meeting_raises_rank_and_is_named(log):
    graph = alliance(
        log,
        log.schedule("fair", FAIR),
        log.attend("m", "fair"),
        log.attend("s-led", "fair"),
    )

    result = suggest(graph, "m", now=log.now)
    plain = suggest(alliance(log), "m", now=log.now)

    met = by_id(result, "s-led")
    shared = reason(met, "shared_events")
    assert met.score > by_id(plain, "s-led").score
    assert shared.text_en == f"Both took part in '{FAIR}'."
    assert shared.text_ja == f"「{FAIR}」に両社とも参加しました。"
    assert shared.evidence["events"][0]["event_code"] == "fair"
    # A meeting counts once, as shared events: proximity walks supply links.
    assert "proximity" not in {r.kind for r in met.reasons}


def test_suggest_many_shared_meetings_names_the_latest_three(log):
    meetings = []
    for n in range(5):
        meetings += [
            log.schedule(f"e{n}", f"Study group {n}", starts_at=log.ago(50 - n)),
            log.attend("m", f"e{n}"),
            log.attend("s-led", f"e{n}"),
        ]
    graph = alliance(log, *meetings)

    result = suggest(graph, "m", now=log.now)

    shared = reason(by_id(result, "s-led"), "shared_events")
    assert shared.text_en == (
        "Both took part in 'Study group 4', 'Study group 3', 'Study group 2' "
        "and 2 other meetings."
    )
    assert shared.text_ja == (
        "「Study group 4」「Study group 3」「Study group 2」など5件の会合に"
        "両社とも参加しました。"
    )


def test_suggest_proximity_reason_names_the_partners_on_the_way(log):
    graph = alliance(
        log,
        log.register("x", name="銀座商事株式会社", name_en="Ginza Trading"),
        log.register("y", name="有楽産業", name_en="Yuraku Sangyo"),
        log.link("m", "x"),  # x supplies m
        log.link("y", "x"),  # and y
        log.link("y", "s-both"),  # s-both supplies y: three steps from m
    )

    result = suggest(graph, "m", now=log.now)

    proximity = reason(by_id(result, "s-both"), "proximity")
    assert proximity.text_en == (
        "Connected to you through Ginza Trading and Yuraku Sangyo."
    )
    assert proximity.text_ja == (
        "銀座商事株式会社、有楽産業を通じて貴社とつながっています。"
    )
    assert proximity.evidence["path"] == ["m", "x", "y", "s-both"]


def test_suggest_co_customers_reason_names_the_firm_buying_from_both(log):
    graph = alliance(
        log,
        log.register("x", name="銀座商事株式会社", name_en="Ginza Trading"),
        log.register("y", name="有楽産業", name_en="Yuraku Sangyo"),
        log.link("m", "x"),
        log.link("y", "x"),
        log.link("y", "s-both"),
    )

    result = suggest(graph, "m", now=log.now)

    co = reason(by_id(result, "s-both"), "co_customers")
    assert co.text_en == ("Supplies Yuraku Sangyo, which buys from your suppliers too.")
    assert co.text_ja == "貴社の仕入先から同じく仕入れている有楽産業に供給しています。"
    assert co.evidence == {"co_customers": 1, "named": ["y"]}
    assert "co_customers" not in {r.kind for r in by_id(result, "s-led").reasons}


def test_suggest_even_walks_give_no_proximity(log):
    graph = alliance(
        log,
        log.register("x", name="銀座商事株式会社", name_en="Ginza Trading"),
        log.link("m", "x"),
        log.link("s-both", "x"),  # s-both buys from m's supplier: a competitor
    )

    result = suggest(graph, "m", now=log.now)

    assert "proximity" not in {r.kind for r in by_id(result, "s-both").reasons}


def test_suggest_recency_reason_dates_the_newest_supply_link(log):
    graph = alliance(
        log,
        log.register("x"),
        log.register("y"),
        log.link("m", "x"),
        log.link("y", "x"),
        log.link("y", "s-both"),
    )

    result = suggest(graph, "m", now=log.now)

    recency = reason(by_id(result, "s-both"), "recency")
    assert recency.evidence == {"newest_supply": "2024-04-01"}
    assert recency.text_en == ("Its newest supply relationship began on 2024-04-01.")
    # 2024-04-01 to 2026-10-01 is 913 days: 2 ** (-913 / 365) of the weight.
    assert recency.contribution == round(WEIGHTS["recency"] * 0.5 ** (913 / 365), 4)


def test_suggest_proximity_reason_recalls_an_earlier_deal(log):
    graph = alliance(
        log,
        log.suggested("m1", "m", "s-led"),
        *log.steps_to_deal("m1", "m", "s-led"),
        log.closed("m1"),
    )

    result = suggest(graph, "m", now=log.now)

    proximity = reason(by_id(result, "s-led"), "proximity")
    assert (
        proximity.text_en == "Has closed a deal with you through the platform before."
    )
    assert proximity.evidence["path"] == ["m", "s-led"]


def test_suggest_ward_reason_names_both_wards(log):
    graph = alliance(log)

    result = suggest(graph, "m", now=log.now)

    ward = reason(by_id(result, "s-led"), "ward")
    assert ward.text_en == "Based in Chuo, next to your ward, Chiyoda."
    assert ward.text_ja == "貴社のある千代田区に隣接する中央区にあります。"
    assert ward.contribution == WEIGHTS["ward"] * 0.5


def test_suggest_counts_only_active_credentials_valid_now(log):
    graph = alliance(
        log,
        log.credential("s-led", "iso_14001", expires_on=log.ago(1).date()),
        log.credential("s-both", "eco_action_21", status="lapsed"),
        log.credential("b-rec", "local_scheme", expires_on=date(2027, 3, 31)),
    )

    result = suggest(graph, "m", now=log.now)

    holders = [
        s.candidate_id for s in result for r in s.reasons if r.kind == "credential"
    ]
    credential = reason(by_id(result, "b-rec"), "credential")
    assert holders == ["b-rec"]
    assert credential.text_en == (
        "Holds an active EMS credential: local EMS scheme, valid until 2027-03-31."
    )
    assert credential.text_ja == "自治体版EMSの認証・登録が有効です（2027-03-31まで）。"


def test_suggest_credential_uses_the_highest_valid_scheme(log):
    graph = alliance(
        log,
        log.credential("s-led", "simple_declaration"),
        log.credential("s-led", "iso_14001"),
    )

    result = suggest(graph, "m", now=log.now)

    credential = reason(by_id(result, "s-led"), "credential")
    assert credential.evidence["scheme"] == "iso_14001"
    assert credential.contribution == WEIGHTS["credential"]


def test_suggest_track_record_favours_candidates_whose_introductions_closed(log):
    twins = [
        log.register(o, ward="13123", offers=["water_saving"]) for o in ("c1", "c2")
    ]
    history = [
        log.register("o1"),
        log.suggested("h1", "o1", "c1"),
        log.suggested("h2", "o1", "c2"),
        *log.steps_to_deal("h2", "o1", "c2"),
        log.closed("h2"),
    ]
    graph = log.build(
        [log.register("w", ward="13123", needs=["water_saving"]), *twins, *history]
    )

    result = suggest(graph, "w", now=log.now)

    assert ids(result) == ["c2", "c1"]
    assert reason(result[0], "track_record").text_en == (
        "1 of 1 introduction through the platform led to a deal."
    )
    assert reason(result[1], "track_record").evidence == {"suggested": 1, "deals": 0}


def test_suggest_candidate_fitting_both_ways_takes_the_better_role(log):
    graph = alliance(
        log,
        log.register("trader", offers=["hvac"], needs=["recycling"]),
        log.register("even", offers=["hvac", "led_lighting"], needs=["recycling"]),
    )

    result = suggest(graph, "m", now=log.now)

    assert by_id(result, "trader").role == "buyer"  # 1/1 of its needs > 1/2 of m's
    assert by_id(result, "even").role == "supplier"  # 2/2 equals 1/1: supplier
    assert by_id(result, "even").categories == ["hvac", "led_lighting"]


def test_suggest_finds_a_far_candidate_lifted_by_its_deals(log):
    history = []
    for n in range(3):
        history += [
            log.register(f"h{n}"),
            log.suggested(f"m{n}", f"h{n}", "far"),
            *log.steps_to_deal(f"m{n}", f"h{n}", "far"),
            log.closed(f"m{n}"),
        ]
    graph = log.build(
        [
            log.register("w", ward="13101", needs=["solar", "hvac"]),
            log.register("near", ward="13101", offers=["solar"]),
            # near: 0.15 + 0.09 + 0.09 * 2/4 + 0.02 = 0.305
            log.credential("near", "local_scheme"),
            log.register("far", ward="13123", offers=["solar", "hvac"]),
            *history,  # far: 0.30 + 0.08 * (3 + 1) / (3 + 4) = 0.3457
        ]
    )

    result = suggest(graph, "w", limit=1, now=log.now)

    assert [(s.candidate_id, s.score) for s in result] == [("far", 0.3457)]


def test_suggest_ties_are_broken_by_org_id_whatever_the_log_order(log):
    member = log.register("w", needs=["solar"])
    zeta, alpha = (log.register(o, offers=["solar"]) for o in ("zeta", "alpha"))

    forward = suggest(log.build([member, zeta, alpha]), "w", now=log.now)
    backward = suggest(log.build([alpha, zeta, member]), "w", now=log.now)

    assert ids(forward) == ids(backward) == ["alpha", "zeta"]
    assert forward == backward


def test_suggest_respects_the_limit(log):
    graph = alliance(log)

    everything = suggest(graph, "m", now=log.now)
    two = suggest(graph, "m", limit=2, now=log.now)

    assert two == everything[:2]
    assert suggest(graph, "m", limit=0, now=log.now) == []


def test_suggest_reasons_are_positive_sorted_and_add_up_to_the_score(log):
    graph = alliance(
        log,
        log.register("s-near", ward="13101", offers=["hvac"]),
        log.attend("m", "fair"),
        log.attend("s-near", "fair"),
        log.credential("s-both", "eco_action_21"),
    )

    result = suggest(graph, "m", now=log.now)

    assert [r.kind for r in by_id(result, "s-near").reasons] == [
        "fit",
        "ward",
        "shared_events",
        "track_record",
    ]
    for s in result:
        contributions = [r.contribution for r in s.reasons]
        assert all(c > 0 for c in contributions)
        assert contributions == sorted(contributions, reverse=True)
        assert sum(contributions) == pytest.approx(s.score, abs=1e-3)
        assert s.model_version == MODEL_VERSION


def test_suggestion_to_dict_round_trips_through_json(log):
    graph = alliance(log, log.attend("m", "fair"), log.attend("s-led", "fair"))

    data = by_id(suggest(graph, "m", now=log.now), "s-led").to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["candidate_id"] == "s-led"
    assert data["candidate_name"] == "中央電気株式会社"
    assert {r["kind"] for r in data["reasons"]} >= {"fit", "shared_events"}


ORG_IDS = [f"o{n}" for n in range(14)]
CAPS = ["solar", "hvac", "recycling", "insulation"]
org_profiles = st.fixed_dictionaries(
    {
        "ward": st.sampled_from(["13101", "13102", "13105", "13123"]),
        "offers": st.lists(st.sampled_from(CAPS), max_size=2, unique=True),
        "needs": st.lists(st.sampled_from(CAPS), max_size=3, unique=True),
        "scheme": st.sampled_from([None, "simple_declaration", "iso_14001"]),
        "expired": st.booleans(),
    }
)
ties = st.lists(
    st.tuples(
        st.sampled_from(["link", "attend", "deal", "decline"]),
        st.sampled_from(ORG_IDS),
        st.sampled_from(ORG_IDS),
    ),
    max_size=25,
)


def random_alliance(log, profiles, steps):
    envelopes = []
    for org_id, profile in zip(ORG_IDS, profiles, strict=False):
        envelopes.append(
            log.register(
                org_id,
                ward=profile["ward"],
                offers=profile["offers"],
                needs=profile["needs"],
            )
        )
        if profile["scheme"]:
            expires = log.ago(1 if profile["expired"] else -100).date()
            envelopes.append(
                log.credential(org_id, profile["scheme"], expires_on=expires)
            )
    for n, (kind, a, b) in enumerate(steps):
        if a == b:
            continue
        if kind == "link":
            envelopes.append(log.link(a, b))
        elif kind == "attend":
            envelopes += [log.attend(a, f"ev{n % 3}"), log.attend(b, f"ev{n % 3}")]
        else:
            envelopes.append(log.suggested(f"x{n}", a, b, at=log.ago(30)))
            if kind == "deal":
                envelopes += log.steps_to_deal(f"x{n}", a, b, at=log.ago(20))
                envelopes.append(log.closed(f"x{n}", at=log.ago(20)))
            else:
                envelopes.append(log.declined(f"x{n}", a, at=log.ago(20)))
    return log.build(envelopes)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    profiles=st.lists(org_profiles, min_size=2, max_size=len(ORG_IDS)),
    steps=ties,
    limit=st.integers(min_value=1, max_value=4),
)
def test_suggest_pruned_top_matches_scoring_every_candidate(
    log, profiles, steps, limit
):
    graph = random_alliance(log, profiles, steps)

    for org_id in graph.orgs():
        top = suggest(graph, org_id, limit=limit, now=log.now)

        everyone = suggest(graph, org_id, limit=10_000, now=log.now)
        assert top == everyone[:limit]
        ranks = [(-s.score, s.candidate_id) for s in everyone]
        assert ranks == sorted(ranks)


def crowd(log, members):
    """Return an alliance where one supplier, 'star', beats every other for all."""
    envelopes = [
        log.register("star", offers=["solar"]),
        log.credential("star", "iso_14001"),
        log.register("plain", ward="13123", offers=["solar"]),
    ]
    for n in range(members):
        envelopes.append(log.register(f"m{n:02d}", needs=["solar"]))
    return log.build(envelopes)


def test_suggest_without_exposure_gives_the_popular_supplier_every_top_slot(log):
    graph = crowd(log, 30)

    tops = [suggest(graph, f"m{n:02d}", now=log.now)[0] for n in range(30)]

    assert {s.candidate_id for s in tops} == {"star"}


def test_suggest_exposure_caps_the_lists_a_candidate_is_in(log):
    graph = crowd(log, 24)
    exposure = Exposure(share=0.05, min_lists=10)

    lists = [
        ids(suggest(graph, f"m{n:02d}", limit=1, now=log.now, exposure=exposure))
        for n in range(24)
    ]

    # Each is in at most 10 lists (5 % of 24 is less); the last members wait.
    assert lists == [["star"]] * 10 + [["plain"]] * 10 + [[]] * 4
    assert (exposure.count("star"), exposure.count("plain")) == (10, 10)


def test_exposure_keeps_a_candidate_in_the_lists_it_is_in_and_frees_slots(log):
    graph = crowd(log, 3)
    exposure = Exposure(min_lists=1)
    suggest(graph, "m00", limit=1, now=log.now, exposure=exposure)

    again = suggest(graph, "m00", limit=1, now=log.now, exposure=exposure)
    other = suggest(graph, "m01", limit=1, now=log.now, exposure=exposure)
    exposure.forget("m00")
    freed = suggest(graph, "m02", limit=1, now=log.now, exposure=exposure)

    assert (ids(again), ids(other), ids(freed)) == (["star"], ["plain"], ["star"])


def test_suggest_takes_the_weights_it_is_given(log):
    graph = alliance(log, log.credential("s-led", "iso_14001"))

    result = suggest(graph, "m", now=log.now, weights={"credential": 1.0})

    assert [(s.candidate_id, s.score) for s in result[:1]] == [("s-led", 1.0)]
    assert [r.kind for r in result[0].reasons] == ["credential"]


@pytest.mark.parametrize("weights", [{"fit": -0.1}, {"charm": 0.5}])
def test_suggest_refuses_negative_or_unknown_weights(log, weights):
    graph = alliance(log)

    with pytest.raises(ValueError):
        suggest(graph, "m", now=log.now, weights=weights)
