//! Scenario tests built by hand, one per signal, and property tests over arbitrary
//! records.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::model::*;

pub(super) const ADA: u128 = 1;
pub(super) const BO: u128 = 2;

pub(super) fn id(n: u128) -> PersonId {
    Uuid::from_u128(n)
}

pub(super) fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 30).unwrap()
}

pub(super) fn ago(n: u64) -> NaiveDate {
    today().checked_sub_days(Days::new(n)).unwrap()
}

/// Noon UTC on the date, with no offset.
pub(super) fn on(date: NaiveDate) -> When {
    let at = date
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    When {
        at,
        date,
        utc_offset_min: 0,
    }
}

/// A small id generator so every record gets its own id.
#[derive(Default)]
pub(super) struct Ids(u128);

impl Ids {
    pub(super) fn next(&mut self) -> Uuid {
        self.0 += 1;
        Uuid::from_u128(1_000_000 + self.0)
    }
}

#[derive(Default)]
pub(super) struct Scenario {
    pub(super) inputs: InsightInputs,
    pub(super) ids: Ids,
}

impl Scenario {
    pub(super) fn couple() -> Scenario {
        let mut s = Scenario::default();
        s.person(ADA, "Ada", 0);
        s.person(BO, "Bo", 1);
        s
    }

    pub(super) fn person(&mut self, n: u128, name: &str, joined_at: Millis) {
        self.inputs.people.push(Person {
            id: id(n),
            name: name.into(),
            joined_at,
        });
    }

    /// One check-in with every burnout sign rated `sign`.
    pub(super) fn checkin(
        &mut self,
        who: u128,
        date: NaiveDate,
        battery: u8,
        sign: u8,
        basics: &[(Basic, BasicLevel)],
    ) -> Uuid {
        let cid = self.ids.next();
        self.inputs.checkins.push(CheckIn {
            id: cid,
            author: id(who),
            when: on(date),
            battery,
            signs: BurnoutSign::ALL.iter().map(|s| (*s, sign)).collect(),
            body: BTreeSet::new(),
            basics: basics.iter().copied().collect::<BTreeMap<_, _>>(),
            note: None,
            ask: None,
            visibility: Visibility::Shared,
            kept_to_self: Default::default(),
        });
        cid
    }

    /// A check-in every day from `from` days ago to `to` days ago, inclusive.
    pub(super) fn days(
        &mut self,
        who: u128,
        from: u64,
        to: u64,
        battery: u8,
        sign: u8,
        rest_met: bool,
    ) {
        let basics: &[(Basic, BasicLevel)] = if rest_met {
            &[(Basic::Rest, BasicLevel::Met)]
        } else {
            &[]
        };
        for n in (to..=from).rev() {
            self.checkin(who, ago(n), battery, sign, basics);
        }
    }

    /// A steady usual level for both, over the eight weeks before the recent stretch.
    pub(super) fn usual_baseline(&mut self) {
        self.days(ADA, 83, 28, 70, 1, false);
        self.days(BO, 83, 28, 65, 1, false);
    }

    pub(super) fn item(
        &mut self,
        domain: Domain,
        weight: u8,
        invisible: bool,
        owners: Owners,
    ) -> Uuid {
        let iid = self.ids.next();
        self.inputs.items.push(LedgerItem {
            id: iid,
            title: "something".into(),
            domain,
            labour: Labour::Cognitive,
            invisible,
            owners,
            cadence: None,
            minutes_per_week: None,
            weight,
            good_enough: String::new(),
            status: ItemStatus::Active,
            agreed_by: BTreeSet::new(),
            agreed_at: None,
            created_by: id(ADA),
            created_at: 0,
            created_utc_offset_min: 0,
            paused_until: None,
        });
        iid
    }

    pub(super) fn done(&mut self, who: u128, item: Option<Uuid>, date: NaiveDate) -> Uuid {
        let did = self.ids.next();
        self.inputs.done.push(DoneEntry {
            id: did,
            item,
            label: item.is_none().then(|| "remembered the dentist".to_string()),
            by: id(who),
            when: on(date),
            minutes: Some(10),
            note: None,
        });
        did
    }

    pub(super) fn moment(&mut self, who: u128, date: NaiveDate) {
        let mid = self.ids.next();
        self.inputs.moments.push(Moment {
            id: mid,
            kind: MomentKind::Laugh,
            started_by: id(who),
            when: on(date),
            note: None,
        });
    }

    pub(super) fn ack(&mut self, from: u128, to: u128, target: Target, date: NaiveDate) {
        let aid = self.ids.next();
        self.inputs.acks.push(Acknowledgment {
            id: aid,
            from: id(from),
            to: id(to),
            target,
            kind: AckKind::Thanks,
            when: on(date),
            note: None,
        });
    }

    pub(super) fn handoff(
        &mut self,
        item: Uuid,
        from: u128,
        to: u128,
        state: HandoffState,
        date: NaiveDate,
    ) {
        let hid = self.ids.next();
        let when = on(date);
        self.inputs.handoffs.push(Handoff {
            id: hid,
            item,
            stage: Stage::Plan,
            from: id(from),
            to: id(to),
            when,
            note: None,
            state,
            answered_by: (state != HandoffState::Open).then(|| id(to)),
            answered_at: (state != HandoffState::Open).then_some(when.at + 3_600_000),
            counter: None,
        });
    }

    pub(super) fn reflection(&mut self, who: u128, date: NaiveDate, answers: [Answer; 3]) {
        let rid = self.ids.next();
        self.inputs.reflections.push(Reflection {
            id: rid,
            author: id(who),
            when: on(date),
            energy: answers[0],
            safe: answers[1],
            aligned: answers[2],
            note: None,
            visibility: Visibility::Shared,
        });
    }

    pub(super) fn run(&self) -> Insights {
        compute(&self.inputs, today(), &Params::default()).unwrap()
    }
}

/// The signals as (key, person) pairs, in report order.
fn found(report: &Insights) -> Vec<(&'static str, Option<PersonId>)> {
    report
        .signals
        .iter()
        .map(|s| (s.key.key(), s.person))
        .collect()
}

fn steps(report: &Insights) -> Vec<&'static str> {
    report.suggestions.iter().map(|s| s.step.key()).collect()
}

fn why(report: &Insights, key: SignalKey) -> String {
    report
        .signals
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.why.clone())
        .unwrap_or_default()
}

#[test]
fn a_rough_patch_that_lifts_after_rest() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 21, 70, 1, false);
    s.days(ADA, 20, 14, 35, 3, false);
    s.days(ADA, 13, 7, 40, 3, true);
    s.days(ADA, 6, 0, 70, 1, true);
    s.days(BO, 27, 0, 65, 1, false);
    let r = s.run();
    assert_eq!(found(&r), vec![("rough-patch", Some(id(ADA)))]);
    assert_eq!(
        why(&r, SignalKey::RoughPatch),
        "A heavier stretch last week eased after rest."
    );
    assert_eq!(steps(&r), vec!["moments"]);
    let ada = &r.trends[0];
    assert_eq!(ada.baseline.source, BaselineSource::Median);
    assert_eq!(ada.baseline.battery, Some(70.0));
    let elevated: Vec<Option<bool>> = ada.recent.iter().map(|w| w.elevated).collect();
    assert_eq!(
        elevated,
        vec![Some(false), Some(true), Some(true), Some(false)]
    );
}

#[test]
fn a_lingering_rise_that_rest_did_not_lift() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 14, 45, 3, false);
    s.days(ADA, 13, 7, 45, 3, true);
    s.days(ADA, 6, 0, 40, 3, false);
    s.days(BO, 27, 0, 65, 1, false);
    let r = s.run();
    assert_eq!(found(&r), vec![("lingering", Some(id(ADA)))]);
    assert!(why(&r, SignalKey::Lingering).contains("four of the last four weeks"));
    // Lingering shows every later step of the order, support included.
    assert_eq!(steps(&r), vec!["who-holds-what", "good-enough", "support"]);
    let states: Vec<&str> = r.recovery.iter().map(|s| s.state.key()).collect();
    assert_eq!(states, vec!["steady", "steady", "now", "also", "also"]);
    let seven = &r.trends[0].windows[0];
    assert_eq!(seven.days, 7);
    assert_eq!(seven.battery, Some(40.0));
    assert_eq!(seven.battery_change, Change::Lower);
    assert_eq!(seven.signs_change, Change::Higher);
}

#[test]
fn a_long_rise_without_rest_is_a_rough_patch_not_lingering() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 45, 3, false);
    s.days(BO, 27, 0, 65, 1, false);
    let r = s.run();
    assert_eq!(found(&r), vec![("rough-patch", Some(id(ADA)))]);
    assert!(why(&r, SignalKey::RoughPatch).contains("no rest logged"));
}

#[test]
fn one_partner_carrying_most_invisible_stages() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    let owners = Owners {
        notice: Some(id(ADA)),
        plan: Some(id(BO)),
        do_: Some(id(BO)),
        follow_up: Some(id(ADA)),
    };
    let mut items = Vec::new();
    for domain in [
        Domain::Household,
        Domain::Parenting,
        Domain::Logistics,
        Domain::Social,
    ] {
        items.push(s.item(domain, 2, true, owners.clone()));
    }
    for n in 0..4 {
        s.done(ADA, Some(items[n % items.len()]), ago(n as u64 * 3));
    }
    // Acknowledged work is not counted as unseen.
    let seen = s.done(ADA, None, ago(2));
    s.ack(
        BO,
        ADA,
        Target {
            kind: TargetKind::Done,
            id: seen,
        },
        ago(1),
    );
    let r = s.run();
    assert_eq!(
        found(&r),
        vec![
            ("balance-heavy", Some(id(ADA))),
            ("unacknowledged-invisible-work", Some(id(ADA))),
        ]
    );
    assert_eq!(steps(&r), vec!["who-holds-what"]);
    assert_eq!(r.balance.overall.band, Some(Band::Balanced));
    assert_eq!(r.balance.invisible_stages.band, Some(Band::Heavy));
    let pcts: Vec<u32> = r
        .balance
        .invisible_stages
        .shares
        .iter()
        .map(|s| s.pct)
        .collect();
    assert_eq!(pcts, vec![100, 0]);
    assert_eq!(r.balance.invisible_work[0].done, 5);
    assert_eq!(r.balance.invisible_work[0].unacknowledged, 4);
    assert!(why(&r, SignalKey::BalanceHeavy).contains("most of the noticing and following up"));
}

#[test]
fn both_depleted_with_fewer_moments_and_declined_handoffs() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 14, 70, 1, false);
    s.days(BO, 27, 14, 65, 1, false);
    s.days(ADA, 13, 0, 40, 3, false);
    s.days(BO, 13, 0, 35, 3, false);
    for n in 0..8 {
        s.moment(if n % 2 == 0 { ADA } else { BO }, ago(30 + n * 3));
    }
    s.moment(ADA, ago(20));
    let item = s.item(Domain::Household, 2, false, Owners::all(id(ADA)));
    s.handoff(item, ADA, BO, HandoffState::Declined, ago(10));
    s.handoff(item, ADA, BO, HandoffState::Declined, ago(3));
    let r = s.run();
    assert_eq!(
        found(&r),
        vec![
            ("both-depleted", None),
            ("rough-patch", Some(id(ADA))),
            ("rough-patch", Some(id(BO))),
            ("fewer-moments", None),
            ("handoffs-declined", None),
        ]
    );
    assert_eq!(
        why(&r, SignalKey::BothDepleted),
        "You both seem more worn down than usual at the same time, alongside fewer moments together and handoffs declined."
    );
    assert_eq!(steps(&r), vec!["moments", "good-enough"]);
    assert_eq!(r.connection.moments.trend, Change::Lower);
}

#[test]
fn unmet_basics_come_before_every_other_step() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    s.checkin(
        ADA,
        ago(2),
        60,
        1,
        &[
            (Basic::Sleep, BasicLevel::No),
            (Basic::Food, BasicLevel::Met),
        ],
    );
    s.checkin(
        ADA,
        ago(1),
        60,
        1,
        &[
            (Basic::Sleep, BasicLevel::No),
            (Basic::Rest, BasicLevel::No),
        ],
    );
    for n in 0..6 {
        s.moment(BO, ago(30 + n * 4));
    }
    let r = s.run();
    assert_eq!(
        found(&r),
        vec![("basics-first", Some(id(ADA))), ("nobody-starting", None)]
    );
    assert_eq!(
        why(&r, SignalKey::BasicsFirst),
        "Sleep and rest were logged as not met on two days this week; the basics come before anything else."
    );
    assert_eq!(steps(&r), vec!["basics", "moments"]);
    assert!(r.suggestions[0].text.contains("an earlier night"));
}

#[test]
fn feeling_unsafe_keeps_support_in_the_steps() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    s.checkin(BO, ago(1), 60, 1, &[(Basic::Safety, BasicLevel::No)]);
    for n in 0..6 {
        s.moment(BO, ago(30 + n * 4));
    }
    s.inputs.viewer = Some(id(BO));
    let r = s.run();
    assert_eq!(steps(&r), vec!["basics", "moments", "support"]);
    assert!(r.suggestions[0].text.starts_with("If you do not feel safe"));
}

#[test]
fn a_partners_safety_answer_never_reaches_the_report() {
    // Bo logged that he does not feel safe, and said no to feeling emotionally safe in
    // a shared reflection. Ada's report neither shows it nor advises her about it.
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    s.checkin(BO, ago(1), 60, 1, &[(Basic::Safety, BasicLevel::No)]);
    s.reflection(BO, ago(2), [Answer::Yes, Answer::No, Answer::Yes]);
    for viewer in [Some(id(ADA)), None] {
        s.inputs.viewer = viewer;
        let r = s.run();
        let bo = r.trends.iter().find(|t| t.person == id(BO)).unwrap();
        assert!(!bo.basics_unmet_last_week.contains_key(&Basic::Safety));
        assert_eq!(r.reflections[0].safe, None);
        assert!(!r.reflections[0].all_yes);
        let json = serde_json::to_string(&r).unwrap().to_lowercase();
        let text = format!(
            "{json}\n{}\n{}\n{}",
            crate::insights::render_terminal(&r, false),
            crate::insights::render_markdown(&r),
            crate::insights::render_html(&r)
        )
        .to_lowercase();
        for word in ["feel safe", "feeling safe", "unsafe", "\"safety\""] {
            assert!(!text.contains(word), "{word} reached the partner");
        }
        assert!(!text.contains(&crate::insights::SAFETY_SUPPORT[..40].to_lowercase()));
    }
}

#[test]
fn a_reflection_answered_yes_to_all_three() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    s.reflection(ADA, ago(3), [Answer::Yes; 3]);
    // An older, different answer is superseded by the latest one.
    s.reflection(BO, ago(40), [Answer::Yes; 3]);
    s.reflection(BO, ago(5), [Answer::Yes, Answer::Unsure, Answer::Yes]);
    // Each reads what their own answers point to; the other's are theirs to say.
    s.inputs.viewer = Some(id(ADA));
    let r = s.run();
    assert_eq!(
        found(&r),
        vec![
            ("reflection-points-to-burnout", Some(id(ADA))),
            ("reflection-shared", Some(id(BO))),
        ]
    );
    assert!(why(&r, SignalKey::ReflectionPointsToBurnout).contains("rather than growing apart"));
    s.inputs.viewer = Some(id(BO));
    let r = s.run();
    assert_eq!(
        found(&r),
        vec![
            ("reflection-mixed", Some(id(BO))),
            ("reflection-shared", Some(id(ADA))),
        ]
    );
    assert_eq!(steps(&r), vec!["support"]);
}

#[test]
fn no_data_says_not_enough_yet() {
    let s = Scenario::couple();
    let r = s.run();
    assert_eq!(found(&r), vec![("not-enough-data", None)]);
    assert_eq!(steps(&r), vec!["check-in"]);
    assert!(r.balance.overall.no_load);
    assert_eq!(r.weeks.len(), 12);
    assert_eq!(r.weeks.last().unwrap().end, today());
    assert_eq!(r.trends[0].weekly.len(), 12);

    let empty = compute(&InsightInputs::default(), today(), &Params::default()).unwrap();
    assert_eq!(found(&empty), vec![("not-enough-data", None)]);
    assert!(empty.trends.is_empty());
}

#[test]
fn one_partner_only() {
    let mut s = Scenario::couple();
    s.days(ADA, 83, 28, 70, 1, false);
    s.days(ADA, 27, 14, 40, 3, false);
    s.days(ADA, 13, 7, 40, 3, true);
    s.days(ADA, 6, 0, 40, 3, false);
    let r = s.run();
    assert_eq!(
        found(&r),
        vec![("lingering", Some(id(ADA))), ("not-enough-data", None)]
    );
    assert!(why(&r, SignalKey::NotEnoughData).starts_with("Only one of you"));

    let mut solo = Scenario::default();
    solo.person(ADA, "Ada", 0);
    solo.days(ADA, 83, 0, 70, 1, false);
    let r = solo.run();
    assert_eq!(found(&r), vec![("not-enough-data", None)]);
    assert!(why(&r, SignalKey::NotEnoughData).starts_with("Only one person"));
    assert_eq!(steps(&r), vec!["check-in"]);
}

#[test]
fn sparse_logging_is_not_enough_for_patterns() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(BO, 27, 0, 65, 1, false);
    s.checkin(ADA, ago(3), 20, 4, &[]);
    s.checkin(ADA, ago(17), 20, 4, &[]);
    let r = s.run();
    assert_eq!(found(&r), vec![("not-enough-data", Some(id(ADA)))]);
    assert!(why(&r, SignalKey::NotEnoughData).starts_with("Only two check-in days"));
}

#[test]
fn gaps_leave_weeks_unjudged_rather_than_guessed() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(BO, 27, 0, 65, 1, false);
    // Two heavy weeks with enough days, then two weeks with one check-in each.
    s.days(ADA, 27, 21, 40, 3, true);
    s.days(ADA, 20, 14, 40, 3, true);
    s.checkin(ADA, ago(10), 40, 3, &[]);
    s.checkin(ADA, ago(3), 40, 3, &[]);
    let r = s.run();
    let elevated: Vec<Option<bool>> = r.trends[0].recent.iter().map(|w| w.elevated).collect();
    assert_eq!(elevated, vec![Some(true), Some(true), None, None]);
    assert_eq!(found(&r), vec![("rough-patch", Some(id(ADA)))]);
    assert!(why(&r, SignalKey::RoughPatch).contains("too few check-ins"));
}

#[test]
fn a_partner_ahead_in_time_counts_as_today_and_far_future_is_left_out() {
    let mut s = Scenario::couple();
    let tomorrow = today().checked_add_days(Days::new(1)).unwrap();
    let later = today().checked_add_days(Days::new(5)).unwrap();
    s.checkin(BO, tomorrow, 50, 1, &[]);
    s.checkin(BO, later, 50, 1, &[]);
    // 23:30 on the 29th in Honolulu is already the 30th in UTC: the local date counts.
    let honolulu = When::from_utc(
        today()
            .and_hms_opt(9, 30, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis(),
        -600,
    );
    assert_eq!(honolulu.date, ago(1));
    s.inputs.checkins[0].when.utc_offset_min = 600;
    let mut late = s.inputs.checkins[0].clone();
    late.id = Uuid::from_u128(77);
    late.when = honolulu;
    s.inputs.checkins.push(late);
    let r = s.run();
    let bo = &r.trends[1];
    assert_eq!(bo.checkins, 2);
    assert_eq!(bo.weekly.last().unwrap().days, 2);
    assert_eq!(r.data.future_dated, 1);
}

#[test]
fn several_checkins_on_one_day_count_as_one_day() {
    let mut s = Scenario::couple();
    s.checkin(ADA, ago(0), 20, 0, &[]);
    s.checkin(ADA, ago(0), 80, 0, &[]);
    s.checkin(ADA, ago(1), 50, 0, &[]);
    let r = s.run();
    let week = r.trends[0].weekly.last().unwrap();
    assert_eq!(week.days, 2);
    assert_eq!(week.battery, Some(50.0));
}

#[test]
fn balance_trend_undoes_accepted_handoffs() {
    let mut s = Scenario::couple();
    let mut items = Vec::new();
    for _ in 0..3 {
        items.push(s.item(Domain::Household, 1, false, Owners::all(id(ADA))));
    }
    // Two weeks ago Bo took over planning and doing of two items.
    for item in items.iter().take(2) {
        for stage in [Stage::Plan, Stage::Do] {
            s.handoff(*item, ADA, BO, HandoffState::Accepted, ago(10));
            let h = s.inputs.handoffs.last_mut().unwrap();
            h.stage = stage;
            let it = s.inputs.items.iter_mut().find(|i| i.id == *item).unwrap();
            it.owners.set(stage, Some(id(BO)));
        }
    }
    let r = s.run();
    let overall: Vec<Vec<u32>> = r
        .balance
        .trend
        .iter()
        .map(|p| p.overall.shares.iter().map(|s| s.pct).collect())
        .collect();
    assert_eq!(
        overall,
        vec![vec![100, 0], vec![100, 0], vec![67, 33], vec![67, 33]]
    );
    assert_eq!(r.balance.trend.last().unwrap().end, today());
    assert_eq!(r.balance.direction, BalanceDirection::EveningOut);
    assert_eq!(r.balance.handoffs.accepted, 4);
}

#[test]
fn paused_and_retired_items_carry_no_load_and_unowned_stages_are_counted_apart() {
    let mut s = Scenario::couple();
    let a = s.item(Domain::Finances, 3, false, Owners::all(id(ADA)));
    s.item(
        Domain::Social,
        2,
        false,
        Owners {
            do_: Some(id(BO)),
            ..Owners::default()
        },
    );
    s.inputs
        .items
        .iter_mut()
        .find(|i| i.id == a)
        .unwrap()
        .status = ItemStatus::Paused;
    let r = s.run();
    assert_eq!(r.balance.active_items, 1);
    assert_eq!(r.balance.unassigned_load, 6);
    assert_eq!(r.balance.overall.load, 2);
    assert_eq!(r.balance.by_domain.len(), 1);
    assert_eq!(r.balance.by_domain[0].domain, Domain::Social);
    assert!(r.balance.invisible_stages.no_load);
    assert_eq!(r.balance.invisible_stages.band, None);
}

#[test]
fn json_shape_is_stable() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 45, 3, true);
    let r = s.run();
    let v = serde_json::to_value(&r).unwrap();
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "schema",
        "today",
        "note",
        "params",
        "people",
        "weeks",
        "trends",
        "balance",
        "connection",
        "reflections",
        "signals",
        "suggestions",
        "recovery",
        "data",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
    assert_eq!(v["schema"], 1);
    assert_eq!(v["today"], "2024-06-30");
    assert_eq!(v["signals"][0]["key"], "lingering");
    assert_eq!(v["trends"][0]["baseline"]["source"], "median");
    assert_eq!(v["params"]["windows_days"], serde_json::json!([7, 28, 90]));
    assert!(v["balance"]["overall"]["no_load"].as_bool().unwrap());
    let back: Insights = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn every_signal_key_serializes_to_its_stable_key() {
    use SignalKey::*;
    for key in [
        BasicsFirst,
        BothDepleted,
        Lingering,
        RoughPatch,
        FewerMoments,
        NobodyStarting,
        FewerAcks,
        BalanceHeavy,
        BalanceLeaning,
        UnacknowledgedInvisibleWork,
        HandoffsDeclined,
        ReflectionPointsToBurnout,
        ReflectionMixed,
        ReflectionShared,
        NotEnoughData,
    ] {
        assert_eq!(serde_json::to_value(key).unwrap(), key.key());
    }
}

#[test]
fn bad_params_say_which_and_how_to_fix() {
    let p = Params {
        ewma_alpha: 0.0,
        ..Params::default()
    };
    let err = compute(&InsightInputs::default(), today(), &p).unwrap_err();
    assert!(err.to_string().contains("ewma_alpha"), "{err}");
    assert!(err.to_string().contains("default"), "{err}");
    let p = Params {
        balanced_max_pct: 75,
        ..Params::default()
    };
    assert!(matches!(
        p.validate(),
        Err(InsightsError::ParamsDisagree { .. })
    ));
    let p = Params {
        weeks: 0,
        ..Params::default()
    };
    assert!(matches!(
        p.validate(),
        Err(InsightsError::ParamOutOfRange { name: "weeks", .. })
    ));
    let p = Params {
        weeks: 600,
        ..Params::default()
    };
    assert_eq!(
        p.validate().unwrap_err().to_string(),
        "the insights setting `weeks` must be between 1 and 522, but was 600; leave it out to use the default"
    );
}

#[test]
fn text_never_sounds_like_a_diagnosis_or_a_streak() {
    // Run every scenario and read every line a person would see.
    let mut lines = Vec::new();
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 30, 4, true);
    s.days(BO, 27, 0, 20, 4, false);
    s.checkin(BO, ago(1), 20, 4, &[(Basic::Safety, BasicLevel::No)]);
    s.reflection(ADA, ago(1), [Answer::No; 3]);
    let r = s.run();
    lines.extend(r.signals.iter().map(|s| s.why.clone()));
    lines.extend(r.suggestions.iter().map(|s| s.text.clone()));
    lines.push(r.note.clone());
    for line in &lines {
        let lower = line.to_lowercase();
        for word in [
            "diagnos",
            "you are burned out",
            "streak",
            "disorder",
            "failed",
            "should have",
        ] {
            if word == "diagnos" && lower.contains("not diagnoses") {
                continue;
            }
            assert!(!lower.contains(word), "{line}");
        }
    }
}

// ---- property tests -------------------------------------------------------------------

fn arb_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        8 => (0i64..200).prop_map(|n| today().checked_sub_days(Days::new(n as u64)).unwrap()),
        1 => (0u64..5).prop_map(|n| today().checked_add_days(Days::new(n)).unwrap()),
        1 => Just(NaiveDate::MIN),
        1 => Just(NaiveDate::MAX),
    ]
}

fn arb_person() -> impl Strategy<Value = PersonId> {
    (1u128..4).prop_map(id)
}

fn arb_when() -> impl Strategy<Value = When> {
    (arb_date(), -720i32..840).prop_map(|(date, off)| When {
        at: 0,
        date,
        utc_offset_min: off,
    })
}

fn arb_checkin() -> impl Strategy<Value = CheckIn> {
    (
        arb_person(),
        arb_when(),
        any::<u8>(),
        proptest::collection::btree_map(
            proptest::sample::select(BurnoutSign::ALL),
            any::<u8>(),
            0..5,
        ),
        proptest::collection::btree_map(
            proptest::sample::select(Basic::ALL),
            proptest::sample::select(BasicLevel::ALL),
            0..4,
        ),
        any::<bool>(),
        any::<u128>(),
    )
        .prop_map(
            |(author, when, battery, signs, basics, private, n)| CheckIn {
                id: Uuid::from_u128(n),
                author,
                when,
                battery,
                signs,
                body: BTreeSet::new(),
                basics,
                note: None,
                ask: None,
                visibility: if private {
                    Visibility::Private
                } else {
                    Visibility::Shared
                },
                kept_to_self: Default::default(),
            },
        )
}

fn arb_owner() -> impl Strategy<Value = Option<PersonId>> {
    proptest::option::weighted(0.8, arb_person())
}

fn arb_item() -> impl Strategy<Value = LedgerItem> {
    (
        proptest::sample::select(Domain::ALL),
        any::<bool>(),
        (arb_owner(), arb_owner(), arb_owner(), arb_owner()),
        any::<u8>(),
        proptest::sample::select(ItemStatus::ALL),
        0u128..6,
        any::<i64>(),
    )
        .prop_map(
            |(domain, invisible, (n, p, d, f), weight, status, k, created_at)| LedgerItem {
                id: Uuid::from_u128(500 + k),
                title: "x".into(),
                domain,
                labour: Labour::Physical,
                invisible,
                owners: Owners {
                    notice: n,
                    plan: p,
                    do_: d,
                    follow_up: f,
                },
                cadence: None,
                minutes_per_week: None,
                weight,
                good_enough: String::new(),
                status,
                agreed_by: BTreeSet::new(),
                agreed_at: None,
                created_by: id(1),
                created_at,
                created_utc_offset_min: 0,
                paused_until: None,
            },
        )
}

fn arb_inputs() -> impl Strategy<Value = InsightInputs> {
    let people = proptest::collection::vec((1u128..4, any::<i64>()), 0..3).prop_map(|ps| {
        ps.into_iter()
            .map(|(n, joined_at)| Person {
                id: id(n),
                name: format!("P{n}"),
                joined_at,
            })
            .collect::<Vec<_>>()
    });
    let done = (
        arb_person(),
        arb_when(),
        proptest::option::of(500u128..506),
        any::<u128>(),
    )
        .prop_map(|(by, when, item, n)| DoneEntry {
            id: Uuid::from_u128(n),
            item: item.map(Uuid::from_u128),
            label: None,
            by,
            when,
            minutes: Some(u32::MAX),
            note: None,
        });
    let moment = (arb_person(), arb_when()).prop_map(|(started_by, when)| Moment {
        id: Uuid::nil(),
        kind: MomentKind::Talk,
        started_by,
        when,
        note: None,
    });
    let ack = (
        arb_person(),
        arb_person(),
        arb_when(),
        500u128..506,
        any::<bool>(),
    )
        .prop_map(|(from, to, when, n, item)| Acknowledgment {
            id: Uuid::nil(),
            from,
            to,
            target: Target {
                kind: if item {
                    TargetKind::Item
                } else {
                    TargetKind::Done
                },
                id: Uuid::from_u128(n),
            },
            kind: AckKind::Seen,
            when,
            note: None,
        });
    let handoff = (
        arb_person(),
        arb_person(),
        arb_when(),
        500u128..506,
        proptest::sample::select(Stage::ALL),
        proptest::sample::select(HandoffState::ALL),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(from, to, when, item, stage, state, answered_at)| Handoff {
                id: Uuid::nil(),
                item: Uuid::from_u128(item),
                stage,
                from,
                to,
                when,
                note: None,
                state,
                answered_by: None,
                answered_at,
                counter: None,
            },
        );
    let reflection = (
        arb_person(),
        arb_when(),
        proptest::sample::select(Answer::ALL),
        any::<bool>(),
    )
        .prop_map(|(author, when, a, private)| Reflection {
            id: Uuid::nil(),
            author,
            when,
            energy: a,
            safe: Answer::Yes,
            aligned: a,
            note: None,
            visibility: if private {
                Visibility::Private
            } else {
                Visibility::Shared
            },
        });
    (
        people,
        proptest::collection::vec(arb_checkin(), 0..120),
        proptest::collection::vec(reflection, 0..4),
        proptest::collection::vec(arb_item(), 0..8),
        proptest::collection::vec(done, 0..20),
        proptest::collection::vec(ack, 0..10),
        proptest::collection::vec(handoff, 0..6),
        proptest::collection::vec(moment, 0..30),
    )
        .prop_map(
            |(people, checkins, reflections, items, done, acks, handoffs, moments)| InsightInputs {
                people,
                checkins,
                reflections,
                items,
                done,
                acks,
                handoffs,
                moments,
                viewer: None,
            },
        )
}

fn assert_shares(s: &Shares) {
    let sum: u32 = s.shares.iter().map(|x| x.pct).sum();
    if s.no_load {
        assert_eq!(s.load, 0);
        assert_eq!(sum, 0);
        assert_eq!(s.band, None);
    } else {
        assert_eq!(sum, 100, "{s:?}");
        let loads: u32 = s.shares.iter().map(|x| x.load).sum();
        assert_eq!(loads, s.load);
    }
}

fn all_shares(b: &Balance) -> Vec<&Shares> {
    let mut out = vec![&b.overall, &b.invisible_stages];
    out.extend(b.by_domain.iter().map(|d| &d.shares));
    out.extend(b.by_stage.iter().map(|d| &d.shares));
    for p in &b.trend {
        out.push(&p.overall);
        out.push(&p.invisible_stages);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn shares_sum_to_100_or_report_no_load(inputs in arb_inputs()) {
        let r = compute(&inputs, today(), &Params::default()).unwrap();
        for s in all_shares(&r.balance) {
            assert_shares(s);
        }
        for counts in [&r.connection.moments, &r.connection.acknowledgments] {
            for period in [&counts.recent, &counts.earlier] {
                let sum: u32 = period.by.iter().map(|c| c.n).sum();
                prop_assert_eq!(sum, period.total);
            }
        }
    }

    #[test]
    fn nothing_panics_and_the_report_holds_together(
        inputs in arb_inputs(),
        today_days in prop_oneof![Just(0i32), 700_000i32..800_000, Just(i32::MAX)],
        weeks in 1u32..60,
    ) {
        let today = NaiveDate::from_num_days_from_ce_opt(today_days)
            .unwrap_or(NaiveDate::MAX);
        let params = Params { weeks, ..Params::default() };
        let r = compute(&inputs, today, &params).unwrap();
        prop_assert_eq!(r.weeks.len(), weeks as usize);
        for t in &r.trends {
            prop_assert_eq!(t.weekly.len(), weeks as usize);
            prop_assert_eq!(t.recent.len(), params.recent_weeks as usize);
        }
        prop_assert_eq!(r.connection.moments.weekly.len(), weeks as usize);
        prop_assert!(!r.suggestions.is_empty() && r.suggestions.len() <= 2);
        let order: Vec<SignalKey> = r.signals.iter().map(|s| s.key).collect();
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(order, sorted);
        for s in &r.signals {
            prop_assert!(!s.why.is_empty());
        }
        let json = serde_json::to_string(&r).unwrap();
        let back: Insights = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back.signals, &r.signals);
        for line in render_terminal(&r, false).lines() {
            prop_assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
        let _ = render_terminal(&r, true);
        let _ = render_markdown(&r);
        let html = render_html(&r);
        prop_assert!(!html.contains("http"));
    }
}

/// Ten years of a household: two people checking in daily, about five done entries a
/// day, a moment a day, acknowledgments and handoffs now and then.
fn ten_years() -> InsightInputs {
    let mut s = Scenario::couple();
    let mut items = Vec::new();
    for (k, domain) in Domain::ALL.iter().enumerate() {
        for j in 0..4u8 {
            let owner = if (k + usize::from(j)) % 3 == 0 {
                BO
            } else {
                ADA
            };
            items.push(s.item(*domain, j % 3 + 1, j % 2 == 0, Owners::all(id(owner))));
        }
    }
    for n in 0..3650u64 {
        let date = ago(n);
        let wave = u8::try_from(n % 90).unwrap_or(0);
        s.checkin(
            ADA,
            date,
            40 + wave / 3,
            (wave / 25).min(4),
            &[(Basic::Rest, BasicLevel::Met)],
        );
        s.checkin(
            BO,
            date,
            70 - wave / 3,
            1,
            &[(Basic::Sleep, BasicLevel::Partly)],
        );
        for k in 0..5u64 {
            let who = if (n + k) % 2 == 0 { ADA } else { BO };
            let item = items[((n * 5 + k) % items.len() as u64) as usize];
            let done = s.done(who, Some(item), date);
            if k == 0 && n % 3 == 0 {
                s.ack(
                    BO,
                    ADA,
                    Target {
                        kind: TargetKind::Done,
                        id: done,
                    },
                    date,
                );
            }
        }
        s.moment(if n % 2 == 0 { ADA } else { BO }, date);
        if n % 30 == 0 {
            let state = if n % 60 == 0 {
                HandoffState::Accepted
            } else {
                HandoffState::Declined
            };
            s.handoff(
                items[(n % items.len() as u64) as usize],
                ADA,
                BO,
                state,
                date,
            );
        }
        if n % 45 == 0 {
            s.reflection(ADA, date, [Answer::Yes; 3]);
        }
    }
    s.inputs
}

/// Times insights and rendering over ten years of data. Run in release:
/// `cargo test --release -p hearth-core --lib insights::tests::ten_years_of_data -- --ignored --nocapture`.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // A benchmark reads the clock; the code it times does not.
fn ten_years_of_data_is_fast() {
    use std::time::Instant;
    let inputs = ten_years();
    assert_eq!(inputs.checkins.len(), 7300);
    assert_eq!(inputs.done.len(), 18250);
    assert_eq!(inputs.moments.len(), 3650);
    let params = Params::default();
    let _warm = compute(&inputs, today(), &params).unwrap();
    let runs = 10u32;
    let start = Instant::now();
    let mut report = None;
    for _ in 0..runs {
        report = Some(compute(&inputs, today(), &params).unwrap());
    }
    let compute_each = start.elapsed() / runs;
    let report = report.unwrap();
    let start = Instant::now();
    let html = render_html(&report);
    let html_time = start.elapsed();
    let start = Instant::now();
    let text = render_terminal(&report, false);
    let term_time = start.elapsed();
    let long = Params {
        weeks: 520,
        ..Params::default()
    };
    let start = Instant::now();
    let decade = compute(&inputs, today(), &long).unwrap();
    let decade_time = start.elapsed();
    let start = Instant::now();
    let decade_html = render_html(&decade);
    let decade_html_time = start.elapsed();
    println!(
        "insights over 10 years ({} check-ins, {} done, {} moments, {} acks): compute {:?} per run; \
         html {:?} ({} bytes); terminal {:?} ({} bytes); 520-week series: compute {:?}, html {:?} ({} bytes)",
        inputs.checkins.len(),
        inputs.done.len(),
        inputs.moments.len(),
        inputs.acks.len(),
        compute_each,
        html_time,
        html.len(),
        term_time,
        text.len(),
        decade_time,
        decade_html_time,
        decade_html.len()
    );
    assert!(
        compute_each.as_millis() <= 100,
        "insights took {compute_each:?}, over the 100 ms target"
    );
}

// ---- care: the body, the order of recovery, no ranking ---------------------------------

#[test]
fn a_this_week_signal_rests_on_this_weeks_check_ins() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 7, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    // Only two check-ins this week, both heavy.
    s.checkin(ADA, ago(1), 30, 3, &[]);
    s.checkin(ADA, ago(3), 30, 3, &[]);
    let r = s.run();
    let signal = r
        .signals
        .iter()
        .find(|x| x.key == SignalKey::RoughPatch)
        .unwrap();
    assert!(signal.why.starts_with("This week looks"), "{}", signal.why);
    assert_eq!(signal.rests_on.checkin_days, 2);
    assert_eq!(signal.rests_on.weeks, 1);
    let text = crate::insights::render_terminal(&r, false);
    assert!(
        text.contains("rests on 2 check-in days this week"),
        "{text}"
    );
}

#[test]
fn body_signs_that_come_up_often_say_what_the_body_may_ask_for() {
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 70, 1, false);
    s.days(BO, 27, 0, 65, 1, false);
    for n in [1, 4, 8, 12] {
        let cid = s.checkin(BO, ago(n), 50, 1, &[(Basic::Sleep, BasicLevel::Partly)]);
        let c = s.inputs.checkins.iter_mut().find(|c| c.id == cid).unwrap();
        c.body = BTreeSet::from([BodySign::Fatigue, BodySign::Aches]);
    }
    let r = s.run();
    let body = r
        .signals
        .iter()
        .find(|x| x.key == SignalKey::BodySigns)
        .unwrap();
    assert_eq!(body.person, Some(id(BO)));
    assert!(
        body.why.to_lowercase().contains("tiredness"),
        "{}",
        body.why
    );
    assert!(
        body.why.contains("sleep or rest fell short"),
        "{}",
        body.why
    );
    assert!(body.why.contains("a doctor"), "{}", body.why);
    let bo = r.trends.iter().find(|t| t.person == id(BO)).unwrap();
    assert_eq!(bo.body_checkins_recent, 4);
    assert_eq!(bo.body_with_short_rest, 4);
    // The restoration step offers more than sleep and food.
    let basics = r
        .suggestions
        .iter()
        .find(|x| x.step == Step::Basics)
        .unwrap();
    for word in ["movement", "quiet", "time on your own"] {
        assert!(basics.text.contains(word), "{}", basics.text);
    }
}

#[test]
fn no_percentage_sits_beside_a_name_and_nothing_ranks() {
    // One side starts every moment and gives every thank-you, and holds most of the load.
    let mut s = Scenario::couple();
    s.usual_baseline();
    s.days(ADA, 27, 0, 40, 3, false);
    s.days(BO, 27, 0, 65, 1, false);
    for n in 0..12 {
        s.moment(ADA, ago(n * 2));
    }
    let items: Vec<Uuid> = (0..4)
        .map(|w| s.item(Domain::Household, w % 3 + 1, true, Owners::all(id(ADA))))
        .collect();
    for (n, item) in items.iter().enumerate() {
        let done = s.done(ADA, Some(*item), ago(n as u64));
        s.ack(
            ADA,
            BO,
            Target {
                kind: TargetKind::Done,
                id: done,
            },
            ago(n as u64),
        );
    }
    let r = s.run();
    let rendered = [
        crate::insights::render_terminal(&r, false),
        crate::insights::render_markdown(&r),
        crate::insights::render_html(&r),
    ];
    let names = ["Ada", "Bo"];
    for text in &rendered {
        for line in text.lines() {
            if !names.iter().any(|n| line.contains(n)) {
                continue;
            }
            assert!(!line.contains('%') || line.contains("width"), "{line}");
        }
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains("all started from one side"), "{text}");
        let lower = text.to_lowercase();
        for word in ["streak", "winner", "score:", "better than"] {
            assert!(!lower.contains(word), "{word}");
        }
    }
    for signal in &r.signals {
        assert!(!signal.why.contains('%'), "{}", signal.why);
    }
}

#[test]
fn the_report_asked_for_uses_the_weeks_given_and_refuses_an_impossible_span() {
    let (docs, _, _, _) = crate::doc::tests::docs_pair();
    let four = report(&docs, false, Some(4), today()).unwrap();
    assert_eq!((four.params.weeks, four.weeks.len()), (4, 4));
    assert_eq!(
        report(&docs, false, None, today()).unwrap().params.weeks,
        Params::default().weeks
    );
    assert!(matches!(
        report(&docs, false, Some(0), today()),
        Err(InsightsError::ParamOutOfRange { name: "weeks", .. })
    ));
}
