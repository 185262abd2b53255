use super::*;
use crate::doc::tests::docs_pair;
use crate::ops::CountingFresh;

const NOW: Millis = 1_767_225_600_000;

fn now_entry() -> EntryTime {
    EntryTime {
        at: None,
        utc_offset_min: 60,
    }
}

fn checkin(visibility: Option<Visibility>, share_safety: bool) -> NewCheckin {
    NewCheckin {
        battery: 40,
        basics: BTreeMap::from([
            (Basic::Safety, BasicLevel::No),
            (Basic::Sleep, BasicLevel::Met),
        ]),
        note: Some("  long week \n".into()),
        ask: Some("   ".into()),
        visibility,
        share_safety,
        at: now_entry(),
        ..NewCheckin::default()
    }
}

#[test]
fn a_checkin_is_shared_by_default_with_texts_trimmed_and_safety_kept_to_its_author() {
    let (mut ada, _, ada_id, _) = docs_pair();
    let written = add_checkin(&mut ada, checkin(None, false), &mut CountingFresh(0), NOW).unwrap();
    let c = &written.record.entry;
    assert_eq!(c.author, ada_id);
    assert_eq!(c.visibility, Visibility::Shared);
    assert_eq!(c.note.as_deref(), Some("long week"));
    assert_eq!(c.ask, None, "a blank ask is dropped");
    assert_eq!(c.when.at, NOW);
    assert_eq!(written.record.waiting_for_partner, None);
    // The kept safety answer went to the private document, which is touched too.
    assert!(!c.kept_to_self.is_empty());
    assert_eq!(
        written.touched,
        BTreeMap::from([
            (DocKind::Household, BTreeSet::from(["checkins"])),
            (DocKind::Private(ada_id), BTreeSet::from(["checkins"])),
        ])
    );
    assert_eq!(safety_support(c), Some(SAFETY_SUPPORT));
}

#[test]
fn a_shared_safety_answer_and_a_private_checkin_touch_one_document() {
    let (mut ada, _, ada_id, _) = docs_pair();
    let fresh = &mut CountingFresh(0);
    let shared = add_checkin(&mut ada, checkin(None, true), fresh, NOW).unwrap();
    assert!(shared.record.entry.kept_to_self.is_empty());
    assert_eq!(
        shared.touched,
        BTreeMap::from([(DocKind::Household, BTreeSet::from(["checkins"]))])
    );
    let private = add_checkin(
        &mut ada,
        checkin(Some(Visibility::Private), false),
        fresh,
        NOW,
    )
    .unwrap();
    assert_eq!(
        private.touched,
        BTreeMap::from([(DocKind::Private(ada_id), BTreeSet::from(["checkins"]))])
    );
}

#[test]
fn a_reveal_together_answer_waits_for_the_partner_and_touches_both_documents() {
    let (mut ada, _, ada_id, _) = docs_pair();
    let written = add_checkin(
        &mut ada,
        checkin(Some(Visibility::RevealTogether), false),
        &mut CountingFresh(0),
        NOW,
    )
    .unwrap();
    assert_eq!(written.record.waiting_for_partner, Some(true));
    assert_eq!(
        written.touched,
        BTreeMap::from([
            (DocKind::Household, BTreeSet::from(["checkins"])),
            (DocKind::Private(ada_id), BTreeSet::from(["checkins"])),
        ])
    );
}

#[test]
fn a_future_time_or_an_unknown_person_is_refused_before_anything_is_written() {
    let (mut ada, _, _, _) = docs_pair();
    let heads = ada.household.heads();
    let mut future = checkin(None, true);
    future.at.at = Some(NOW + crate::ops::FUTURE_SLACK_MS + 1);
    assert!(matches!(
        add_checkin(&mut ada, future, &mut CountingFresh(0), NOW),
        Err(RecordError::Rule(OpsError::InTheFuture))
    ));
    let moment = NewMoment {
        kind: MomentKind::Laugh,
        started_by: Some("Cy".into()),
        note: None,
        at: now_entry(),
    };
    assert!(matches!(
        add_moment(&mut ada, moment, &mut CountingFresh(0), NOW),
        Err(RecordError::Rule(OpsError::NoSuchPerson { .. }))
    ));
    assert_eq!(ada.household.heads(), heads);
}

#[test]
fn reflections_are_private_by_default() {
    let (mut ada, _, ada_id, _) = docs_pair();
    let request = NewReflection {
        energy: Answer::Yes,
        safe: Answer::Yes,
        aligned: Answer::Unsure,
        note: None,
        visibility: None,
        at: now_entry(),
    };
    let written = add_reflection(&mut ada, request, &mut CountingFresh(0), NOW).unwrap();
    assert_eq!(written.record.entry.visibility, Visibility::Private);
    assert_eq!(
        written.touched,
        BTreeMap::from([(DocKind::Private(ada_id), BTreeSet::from(["reflections"]))])
    );
}

fn new_item(owner: Option<&str>) -> NewLedgerItem {
    NewLedgerItem {
        title: "  Plan meals ".into(),
        domain: Domain::Household,
        labour: Labour::Cognitive,
        invisible: true,
        owners: BTreeMap::new(),
        owner: owner.map(str::to_string),
        cadence: Some(Cadence::Weekly),
        minutes_per_week: None,
        weight: 2,
        good_enough: None,
        at: EntryTime {
            at: Some(NOW - 1000),
            utc_offset_min: 120,
        },
    }
}

#[test]
fn a_ledger_item_is_agreed_by_its_author_and_stages_put_on_the_partner_are_offered() {
    let (mut ada, _, ada_id, bo_id) = docs_pair();
    let fresh = &mut CountingFresh(0);
    let mine = add_ledger_item(&mut ada, new_item(None), fresh, NOW).unwrap();
    let item = &mine.record.item;
    assert_eq!(item.title, "Plan meals");
    assert_eq!(item.agreed_by, BTreeSet::from([ada_id]));
    assert_eq!(
        (item.created_at, item.created_utc_offset_min),
        (NOW - 1000, 120)
    );
    assert!(mine.record.offered.is_empty());
    assert_eq!(
        mine.touched,
        BTreeMap::from([(DocKind::Household, BTreeSet::from(["ledger"]))])
    );
    let theirs = add_ledger_item(&mut ada, new_item(Some("partner")), fresh, NOW).unwrap();
    assert!(!theirs.record.offered.is_empty());
    assert!(theirs.record.offered.iter().all(|h| h.to == bo_id));
    assert_eq!(
        theirs.touched,
        BTreeMap::from([(DocKind::Household, BTreeSet::from(["handoffs", "ledger"]))])
    );
}

#[test]
fn a_ledger_write_dated_in_the_future_is_refused_like_an_entry() {
    // `at` on an item, an agreement or a retirement comes from the client, as an
    // entry's does: a JSON client may not date them ahead either.
    let (mut ada, _, _, _) = docs_pair();
    let fresh = &mut CountingFresh(0);
    let item = add_ledger_item(&mut ada, new_item(None), fresh, NOW).unwrap();
    let id = item.record.item.id.to_string();
    let heads = ada.household.heads();
    let ahead = EntryTime {
        at: Some(NOW + crate::ops::FUTURE_SLACK_MS + 1),
        utc_offset_min: 0,
    };
    let mut future_item = new_item(None);
    future_item.at = ahead;
    let refused =
        |r: Result<(), RecordError>| matches!(r, Err(RecordError::Rule(OpsError::InTheFuture)));
    assert!(refused(
        add_ledger_item(&mut ada, future_item, fresh, NOW).map(|_| ())
    ));
    assert!(refused(
        agree_ledger_item(&mut ada, &id, ahead, NOW).map(|_| ())
    ));
    assert!(refused(
        retire_ledger_item(&mut ada, &id, ahead, NOW).map(|_| ())
    ));
    assert_eq!(ada.household.heads(), heads, "nothing was written");
    assert!(retire_ledger_item(&mut ada, &id, EntryTime::default(), NOW).is_ok());
}

#[test]
fn done_names_its_item_and_an_ack_goes_to_the_partner_by_default() {
    let (mut ada, _, ada_id, bo_id) = docs_pair();
    let fresh = &mut CountingFresh(0);
    let item = add_ledger_item(&mut ada, new_item(None), fresh, NOW).unwrap();
    let prefix = item.record.item.id.to_string()[..8].to_string();
    let done = add_done(
        &mut ada,
        NewDone {
            item: Some(prefix.clone()),
            at: now_entry(),
            ..NewDone::default()
        },
        fresh,
        NOW,
    )
    .unwrap();
    assert_eq!(done.record.item_title.as_deref(), Some("Plan meals"));
    assert_eq!(done.record.done.by, ada_id);
    let ack = add_ack(
        &mut ada,
        NewAck {
            target_kind: TargetKind::Done,
            target: done.record.done.id.to_string(),
            kind: AckKind::Thanks,
            to: None,
            note: None,
            at: now_entry(),
        },
        fresh,
        NOW,
    )
    .unwrap();
    assert_eq!((ack.record.from, ack.record.to), (ada_id, bo_id));
    let history = ledger_item_history(&ada, &prefix).unwrap();
    assert_eq!(history.done.len(), 1);
}

#[test]
fn an_accepted_handoff_touches_the_ledger_and_a_second_answer_is_refused_with_its_own_hint() {
    let (mut ada, mut bo, _, bo_id) = docs_pair();
    let fresh = &mut CountingFresh(0);
    let item = add_ledger_item(&mut ada, new_item(None), fresh, NOW).unwrap();
    let offer = propose_handoff(
        &mut ada,
        NewHandoff {
            item: item.record.item.id.to_string(),
            stage: Stage::Plan,
            to: None,
            note: None,
            at: now_entry(),
        },
        fresh,
        NOW,
    )
    .unwrap();
    assert_eq!(offer.record.to, bo_id);
    bo.household
        .automerge_mut()
        .merge(&mut ada.household.automerge().clone())
        .unwrap();
    let id = offer.record.id.to_string();
    let answer = |answer| HandoffAnswer {
        handoff: id.clone(),
        answer,
        counter: None,
        at: now_entry(),
    };
    let accepted = answer_handoff(&mut bo, answer(HandoffState::Accepted), NOW).unwrap();
    assert_eq!(
        accepted.touched,
        BTreeMap::from([(DocKind::Household, BTreeSet::from(["handoffs", "ledger"]))])
    );
    let again = answer_handoff(&mut bo, answer(HandoffState::Declined), NOW);
    assert!(matches!(again, Err(RecordError::AnswerRefused(_))));
}

#[test]
fn marking_for_you_seen_touches_the_private_document_only_when_the_marker_moves() {
    let (mut ada, _, ada_id, _) = docs_pair();
    assert_eq!(
        mark_for_you_seen(&mut ada, NOW).unwrap(),
        BTreeMap::from([(DocKind::Private(ada_id), BTreeSet::new())])
    );
    assert_eq!(mark_for_you_seen(&mut ada, NOW).unwrap(), Touched::new());
}
