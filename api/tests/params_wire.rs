//! The write requests on the wire. Each method's params are written out literally, so a
//! change to the types behind them (they are core's request types) cannot move a byte of
//! the protocol unnoticed: not a field name, an order, a default or a `null`.
#![allow(clippy::unwrap_used)]

use hearth_api::{
    AckParams, AnswerParams, At, Call, CheckinParams, DocCall, DoneParams, HandoffParams,
    LedgerAddParams, LedgerEditParams, MomentParams, ReflectParams, Request,
};
use hearth_core::model::{
    AckKind, Answer, Basic, BasicLevel, BodySign, BurnoutSign, Cadence, Domain, HandoffState,
    Labour, MomentKind, Stage, TargetKind, Visibility,
};

const BACKFILLED: At = At {
    at: Some(1_700_000_000_000),
    utc_offset_min: 60,
};

fn line(call: DocCall) -> String {
    serde_json::to_string(&Request {
        v: 1,
        id: 1,
        call: Call::Doc(call),
        with_people: false,
    })
    .unwrap()
}

/// The call serializes to `expected`, and `expected` reads back into a call that
/// serializes to it again.
fn assert_wire(call: DocCall, expected: &str) {
    assert_eq!(line(call), expected);
    let back: Request = serde_json::from_str(expected).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), expected);
}

/// The call read from a line that leaves out every optional field.
fn read_short(short: &str) -> DocCall {
    match serde_json::from_str::<Request>(short).unwrap().call {
        Call::Doc(call) => call,
        other => panic!("not a document call: {other:?}"),
    }
}

#[test]
fn every_field_given() {
    assert_wire(
        DocCall::CheckinAdd(CheckinParams {
            battery: 40,
            signs: [(BurnoutSign::Dread, 3), (BurnoutSign::Relief, 1)].into(),
            body: [BodySign::Fatigue, BodySign::HairLoss].into(),
            basics: [
                (Basic::Sleep, BasicLevel::Partly),
                (Basic::Safety, BasicLevel::Met),
            ]
            .into(),
            note: Some("long day".into()),
            ask: Some("tea?".into()),
            visibility: Some(Visibility::RevealTogether),
            share_safety: true,
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"checkin.add","params":{"battery":40,"signs":{"dread":3,"relief":1},"body":["fatigue","hair-loss"],"basics":{"sleep":"partly","safety":"met"},"note":"long day","ask":"tea?","visibility":"reveal-together","share_safety":true,"at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::ReflectAdd(ReflectParams {
            energy: Answer::Yes,
            safe: Answer::Unsure,
            aligned: Answer::No,
            note: Some("n".into()),
            visibility: Some(Visibility::Shared),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"reflect.add","params":{"energy":"yes","safe":"unsure","aligned":"no","note":"n","visibility":"shared","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerAdd(LedgerAddParams {
            title: "Meals".into(),
            domain: Domain::Household,
            labour: Labour::Cognitive,
            invisible: true,
            owners: [(Stage::Plan, "partner".to_string())].into(),
            owner: Some("me".into()),
            cadence: Some(Cadence::Weekly),
            minutes_per_week: Some(90),
            weight: 3,
            good_enough: Some("fed".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"ledger.add","params":{"title":"Meals","domain":"household","labour":"cognitive","invisible":true,"owners":{"plan":"partner"},"owner":"me","cadence":"weekly","minutes_per_week":90,"weight":3,"good_enough":"fed","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerEdit(LedgerEditParams {
            id: "ab12".into(),
            title: Some("T".into()),
            owners: [(Stage::FollowUp, "me".to_string())].into(),
            cadence: Some(Cadence::Daily),
            weight: Some(1),
            minutes_per_week: Some(5),
            good_enough: Some("ok".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"ledger.edit","params":{"id":"ab12","title":"T","owners":{"follow-up":"me"},"cadence":"daily","weight":1,"minutes_per_week":5,"good_enough":"ok","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerDone(DoneParams {
            item: Some("ab12".into()),
            label: Some("l".into()),
            by: Some("partner".into()),
            minutes: Some(15),
            note: Some("n".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"ledger.done","params":{"item":"ab12","label":"l","by":"partner","minutes":15,"note":"n","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerAck(AckParams {
            target_kind: TargetKind::Done,
            target: "cd34".into(),
            kind: AckKind::Thanks,
            to: Some("Bo".into()),
            note: Some("n".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"ledger.ack","params":{"target_kind":"done","target":"cd34","kind":"thanks","to":"Bo","note":"n","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerHandoff(HandoffParams {
            item: "ab12".into(),
            stage: Stage::Do,
            to: Some("partner".into()),
            note: Some("n".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"ledger.handoff","params":{"item":"ab12","stage":"do","to":"partner","note":"n","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerAnswer(AnswerParams {
            handoff: "ef56".into(),
            answer: HandoffState::Countered,
            counter: Some("c".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"ledger.answer","params":{"handoff":"ef56","answer":"countered","counter":"c","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::MomentAdd(MomentParams {
            kind: MomentKind::Laugh,
            started_by: Some("partner".into()),
            note: Some("n".into()),
            at: BACKFILLED,
        }),
        r#"{"v":1,"id":1,"method":"moment.add","params":{"kind":"laugh","started_by":"partner","note":"n","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::LedgerAgree {
            id: "ab12".into(),
            at: BACKFILLED,
        },
        r#"{"v":1,"id":1,"method":"ledger.agree","params":{"id":"ab12","at":1700000000000,"utc_offset_min":60}}"#,
    );
    assert_wire(
        DocCall::Reply {
            ask: "cd34".into(),
            text: "yes".into(),
            at: BACKFILLED,
        },
        r#"{"v":1,"id":1,"method":"reply","params":{"ask":"cd34","text":"yes","at":1700000000000,"utc_offset_min":60}}"#,
    );
}

/// Optional fields left out read as their defaults (now, UTC, `null`, empty, weight 2,
/// physical labour, a "seen" acknowledgment), and are written out as `null`s and empties.
#[test]
fn optional_fields_left_out() {
    let cases = [
        (
            r#"{"id":1,"method":"checkin.add","params":{"battery":70}}"#,
            r#"{"v":1,"id":1,"method":"checkin.add","params":{"battery":70,"signs":{},"body":[],"basics":{},"note":null,"ask":null,"visibility":null,"share_safety":false,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"reflect.add","params":{"energy":"yes","safe":"unsure","aligned":"no"}}"#,
            r#"{"v":1,"id":1,"method":"reflect.add","params":{"energy":"yes","safe":"unsure","aligned":"no","note":null,"visibility":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.add","params":{"title":"Bins","domain":"other"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.add","params":{"title":"Bins","domain":"other","labour":"physical","invisible":false,"owners":{},"owner":null,"cadence":null,"minutes_per_week":null,"weight":2,"good_enough":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.edit","params":{"id":"ab12"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.edit","params":{"id":"ab12","title":null,"owners":{},"cadence":null,"weight":null,"minutes_per_week":null,"good_enough":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.done","params":{"label":"fixed the tap"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.done","params":{"item":null,"label":"fixed the tap","by":null,"minutes":null,"note":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.ack","params":{"target_kind":"item","target":"cd34"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.ack","params":{"target_kind":"item","target":"cd34","kind":"seen","to":null,"note":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.handoff","params":{"item":"ab12","stage":"notice"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.handoff","params":{"item":"ab12","stage":"notice","to":null,"note":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.answer","params":{"handoff":"ef56","answer":"accepted"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.answer","params":{"handoff":"ef56","answer":"accepted","counter":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"moment.add","params":{"kind":"laugh"}}"#,
            r#"{"v":1,"id":1,"method":"moment.add","params":{"kind":"laugh","started_by":null,"note":null,"at":null,"utc_offset_min":0}}"#,
        ),
        (
            r#"{"id":1,"method":"ledger.retire","params":{"id":"ab12"}}"#,
            r#"{"v":1,"id":1,"method":"ledger.retire","params":{"id":"ab12","at":null,"utc_offset_min":0}}"#,
        ),
    ];
    for (short, full) in cases {
        assert_wire(read_short(short), full);
    }

    // The defaults that are not `null`, by name.
    match read_short(r#"{"id":1,"method":"ledger.add","params":{"title":"Bins","domain":"other"}}"#)
    {
        DocCall::LedgerAdd(p) => {
            assert_eq!((p.labour, p.weight), (Labour::Physical, 2));
            assert_eq!((p.at.at, p.at.utc_offset_min), (None, 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    match read_short(
        r#"{"id":1,"method":"ledger.ack","params":{"target_kind":"item","target":"cd34"}}"#,
    ) {
        DocCall::LedgerAck(p) => assert_eq!(p.kind, AckKind::Seen),
        other => panic!("unexpected {other:?}"),
    }
}
