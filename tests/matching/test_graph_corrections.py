"""Corrections in the log change the graph back: ended members, lapsed
credentials, corrected attendance, cancelled events, unlinked suppliers and
withdrawn deals."""

from datetime import date, timedelta

from matching.graph import event_node
from matching.ranking import suggest
from schemas.ems import CredentialStatus, Scheme


def candidates(graph, org_id, log):
    return [s.candidate_id for s in suggest(graph, org_id, limit=10, now=log.now)]


def test_apply_profile_update_changes_only_the_given_fields(log):
    graph = log.build([log.register("a", name="旧名", needs=["hvac"])])

    graph.apply(
        log.make("OrganisationProfileUpdated", {"org_id": "a", "needs": ["solar"]})
    )

    assert graph.org("a")["name"] == "旧名"
    assert graph.org("a")["needs"] == {"solar"}
    assert graph.needing("solar") == {"a"}
    assert "a" not in graph.needing("hvac")


def test_apply_membership_ended_stops_suggesting_the_org(log):
    graph = log.build(
        [log.register("buyer", needs=["hvac"]), log.register("gone", offers=["hvac"])]
    )

    touched = graph.apply(
        log.make("MembershipEnded", {"org_id": "gone", "ended_on": date(2026, 9, 30)})
    )

    assert touched == {"buyer"}
    assert candidates(graph, "buyer", log) == []


def test_apply_credential_lapsed_keeps_dates_and_changes_status(log):
    graph = log.build([log.register("a"), log.credential("a", "eco_action_21")])

    graph.apply(
        log.make(
            "CredentialLapsed",
            {"org_id": "a", "scheme": "eco_action_21", "lapsed_on": date(2026, 4, 1)},
        )
    )

    status, issued_on, _ = graph.credentials("a")[Scheme.ECO_ACTION_21]
    assert (status, issued_on) == (CredentialStatus.LAPSED, date(2025, 4, 1))


def test_apply_attendance_corrected_away_removes_the_shared_meeting(log):
    graph = log.build(
        [
            log.register("a"),
            log.register("b"),
            log.attend("a", "m1"),
            log.attend("b", "m1"),
        ]
    )

    graph.apply(
        log.make(
            "AttendanceCorrected",
            {"event_code": "m1", "org_id": "b", "attended": False},
        )
    )

    assert graph.attendees(event_node("m1")) == {"a"}
    assert graph.shared_events("a") == {}


def test_apply_event_cancelled_drops_its_attendance_and_ignores_later_check_ins(log):
    graph = log.build([log.register("a"), log.register("b"), log.attend("a", "m1")])

    graph.apply(log.make("EventCancelled", {"event_code": "m1"}))
    touched = graph.apply(log.attend("b", "m1"))

    assert graph.attendees(event_node("m1")) == set()
    assert touched == set()
    assert graph.G.nodes["a"]["strength"] == 0


def test_apply_supplier_unlinked_makes_the_pair_candidates_again(log):
    graph = log.build(
        [
            log.register("buyer", needs=["hvac"]),
            log.register("seller", offers=["hvac"]),
            log.link("buyer", "seller"),
        ]
    )
    assert candidates(graph, "buyer", log) == []

    graph.apply(
        log.make(
            "SupplierUnlinked",
            {"buyer_id": "buyer", "supplier_id": "seller", "until": date(2026, 3, 31)},
        )
    )

    assert candidates(graph, "buyer", log) == ["seller"]
    assert not graph.G.has_edge("buyer", "seller")


def test_apply_deal_withdrawn_takes_the_deal_back(log):
    graph = log.build(
        [
            log.register("a", needs=["hvac"]),
            log.register("b", offers=["hvac"]),
            log.suggested("m1", "a", "b"),
            *log.steps_to_deal("m1", "a", "b"),
            log.closed("m1"),
        ]
    )
    assert graph.record("b") == (1, 1)

    graph.apply(log.make("DealWithdrawn", {"match_id": "m1"}))

    assert graph.record("b") == (1, 0)
    assert not graph.G.has_edge("a", "b")


def test_apply_registration_with_corporate_number_merges_the_name_only_member(log):
    from schemas.envelope import new_envelope
    from schemas.identity import org_identity

    alias = org_identity("株式会社みどり", "13101", None)
    graph = log.build(
        [
            log.register(alias, name="株式会社みどり", offers=["hvac"]),
            log.register("buyer", needs=["hvac"]),
            log.attend(alias, "fair"),
            log.attend("buyer", "fair"),
        ]
    )
    numbered = new_envelope(
        "OrganisationRegistered",
        {"org_id": "5070001000715", "name": "みどり(株)", "ward": "13101",
         "corporate_number": "5070001000715", "offers": ["hvac"]},
        source="t", occurred_at=log.now, event_id="numbered",
    )  # fmt: skip

    graph.apply(numbered)

    assert not graph.has_org(alias)
    assert graph.attendees(event_node("fair")) == {"5070001000715", "buyer"}
    assert candidates(graph, "buyer", log) == ["5070001000715"]


def earlier(envelope, days):
    """Return the envelope as if it had happened `days` before."""
    return envelope.model_copy(
        update={"occurred_at": envelope.occurred_at - timedelta(days=days)}
    )


def test_apply_profile_update_that_arrives_before_its_registration_is_kept(log):
    registration = earlier(log.register("a", name="旧名", needs=["hvac"]), days=2)
    update = log.make("OrganisationProfileUpdated", {"org_id": "a", "needs": ["solar"]})

    graph = log.build([update, registration])

    assert graph.org("a")["registered"]
    assert graph.org("a")["name"] == "旧名"
    assert graph.org("a")["needs"] == {"solar"}
    assert graph.needing("solar") == {"a"}
    assert "a" not in graph.needing("hvac")


def test_apply_later_registration_overrides_an_earlier_update(log):
    update = log.make(
        "OrganisationProfileUpdated",
        {"org_id": "a", "needs": ["solar"]},
        at=log.ago(3),
    )

    graph = log.build([update, log.register("a", needs=["hvac"])])

    assert graph.org("a")["needs"] == {"hvac"}


def test_apply_correction_that_arrives_before_the_attendance_still_takes_it_back(log):
    attendance = earlier(log.attend("b", "m1"), days=1)
    correction = log.make(
        "AttendanceCorrected", {"event_code": "m1", "org_id": "b", "attended": False}
    )

    graph = log.build(
        [log.register("a"), log.register("b"), log.attend("a", "m1"), correction]
    )
    graph.apply(attendance)

    assert graph.attendees(event_node("m1")) == {"a"}
    assert graph.shared_events("a") == {}


def test_apply_attendance_of_two_people_counts_both_in_any_order(log):
    first = earlier(log.attend("a", "m1", person="p1"), days=1)
    second = log.attend("a", "m1", person="p2")

    graph = log.build([log.register("a"), second, first])

    assert graph.G.edges["a", event_node("m1")]["people"] == 2


def lapsed(log, org_id, on):
    payload = {"org_id": org_id, "scheme": "eco_action_21", "lapsed_on": on}
    return log.make("CredentialLapsed", payload)


def test_apply_lapse_that_arrives_before_its_credential_is_kept_for_it(log):
    graph = log.build([log.register("a"), lapsed(log, "a", date(2026, 4, 1))])

    graph.apply(log.credential("a", "eco_action_21"))

    status, issued_on, _ = graph.credentials("a")[Scheme.ECO_ACTION_21]
    assert (status, issued_on) == (CredentialStatus.LAPSED, date(2025, 4, 1))


def test_apply_renewed_credential_is_active_and_an_older_one_arriving_late_is_not_held(
    log,
):
    renewed = log.credential("a", "eco_action_21", issued_on=date(2026, 6, 1))
    graph = log.build(
        [
            log.register("a"),
            log.credential("a", "eco_action_21"),
            lapsed(log, "a", date(2026, 4, 1)),
            renewed,
        ]
    )

    graph.apply(log.credential("a", "eco_action_21", issued_on=date(2024, 4, 1)))

    status, issued_on, _ = graph.credentials("a")[Scheme.ECO_ACTION_21]
    assert (status, issued_on) == (CredentialStatus.ACTIVE, date(2026, 6, 1))


def test_apply_deal_the_lifecycle_refuses_changes_nothing(log):
    graph = log.build(
        [
            log.register("a", needs=["hvac"]),
            log.register("b", offers=["hvac"]),
            log.suggested("m1", "a", "b"),
            log.suggested("m2", "a", "b"),
            log.declined("m2", "b"),
        ]
    )

    touched = graph.apply(log.closed("m1"))  # no meeting yet: sent past the API
    graph.apply(log.closed("m2"))  # declined

    assert touched == set()
    assert graph.record("b") == (2, 0)
    assert not graph.G.has_edge("a", "b")


def test_apply_deal_whose_steps_arrive_before_the_suggestion_counts_once_it_does(log):
    steps = [*log.steps_to_deal("m1", "a", "b"), log.closed("m1")]
    graph = log.build([log.register("a"), log.register("b"), *steps])
    assert graph.record("b") == (0, 0)

    graph.apply(log.suggested("m1", "a", "b"))

    assert graph.record("b") == (1, 1)


def test_apply_updates_of_the_same_moment_leave_one_state_in_any_order(log):
    one = log.make("OrganisationProfileUpdated", {"org_id": "a", "ward": "13104"})
    other = log.make("OrganisationProfileUpdated", {"org_id": "a", "ward": "13103"})

    graphs = [
        log.build([log.register("a"), *pair]) for pair in ((one, other), (other, one))
    ]

    assert graphs[0].org("a")["ward"] == graphs[1].org("a")["ward"]


def test_apply_membership_end_and_registrations_the_latest_by_time_holds(log):
    ended = log.make(
        "MembershipEnded", {"org_id": "gone", "ended_on": date(2026, 9, 30)}
    )
    first = earlier(log.register("gone", offers=["hvac"]), days=30)
    again = log.make(
        "OrganisationRegistered",
        {"org_id": "back", "name": "戻り", "ward": "13101", "offers": ["hvac"]},
        at=log.ago(-1),
    )
    back_ended = earlier(
        log.make("MembershipEnded", {"org_id": "back", "ended_on": date(2026, 9, 1)}),
        days=10,
    )

    graph = log.build(
        [log.register("buyer", needs=["hvac"]), ended, first, again, back_ended]
    )

    assert candidates(graph, "buyer", log) == ["back"]
    assert graph.G.nodes["gone"]["ended_on"] == date(2026, 9, 30)
