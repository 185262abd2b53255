//! The layout section: an experiment that stores the same generated records in other
//! Automerge layouts, to show what drives load time and query time.
//!
//! This is not Hearth's format. It exists so that a change to `core::doc` can be judged
//! by numbers before it is made: it rebuilds partner A's shared records (the same ones the
//! storage section stores) in a fresh document four ways, crossing two choices:
//!
//! - each record as a map of fields (today's layout), or each *append-only* record
//!   (check-in, reflection, done entry, acknowledgment, moment) as one JSON string, with
//!   ledger items, handoffs, people and devices kept as maps because they are edited;
//! - one Automerge change per record (today: one per call), or one per day.
//!
//! and reports ops, changes, `save()` size and load time of each. It then times the 28-day
//! check-in query three ways: today's `checkins_between`, which reads two fields of every
//! check-in; and a key range over ids that sort by time (UUIDv7 minted from `when.at`),
//! which touches only the records in range.
//!
//! It writes with raw Automerge calls and never through `Docs`, except for the baseline.

use std::time::Instant;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjId, ObjType, ReadDoc, ScalarValue};
use chrono::Days;
use hearth_core::doc::{Collection, Doc, DocKind, Docs, Record};
use hearth_core::model::{CheckIn, Millis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value as Json;

use super::{BenchError, Report, Samples, Unit};
use crate::generate::{self, Household, Options, Who};

const SECTION: &str = "layout";

/// What to measure.
#[derive(Debug, Clone)]
pub struct LayoutOptions {
    /// History length in years.
    pub years: f64,
    /// Generator seed.
    pub seed: u64,
    /// Loads per layout; the median is reported.
    pub runs: usize,
}

/// One record ready to write: its collection, key, fields and time.
struct Row {
    coll: Collection,
    key: String,
    fields: serde_json::Map<String, Json>,
    at: Millis,
    /// Never edited after it is written.
    append_only: bool,
}

fn row<R: Record>(record: &R, at: Millis, append_only: bool) -> Result<Row, BenchError> {
    match serde_json::to_value(record) {
        Ok(Json::Object(fields)) => Ok(Row {
            coll: R::COLLECTION,
            key: record.key(),
            fields,
            at,
            append_only,
        }),
        _ => Err(BenchError::Check(
            "a record did not serialize to a JSON object".into(),
        )),
    }
}

/// Runs the layout experiment.
pub fn run(opts: &LayoutOptions, report: &mut Report) -> Result<(), BenchError> {
    let data = format!("{}y", opts.years);
    let gen = Options::new(opts.years, opts.seed);
    let mut household = Household::new(opts.seed, gen.start_ms)?;
    let summary = generate::generate(&mut household, &gen)?;
    let docs = household.docs(Who::A);
    let rows = rows(docs)?;

    for (name, scalar, per_day) in [
        ("maps, 1 change/record", false, false),
        ("maps, 1 change/day", false, true),
        ("append-only as 1 value, 1 change/record", true, false),
        ("append-only as 1 value, 1 change/day", true, true),
    ] {
        let am = build(&rows, scalar, per_day)?;
        let stats = am.stats();
        let bytes = am.save();
        let mut load = Samples::default();
        for _ in 0..opts.runs.max(1) {
            let started = Instant::now();
            let loaded = Automerge::load(&bytes)?;
            load.push(started.elapsed());
            drop(loaded);
        }
        report.add(
            SECTION,
            &data,
            &format!("{name}: ops"),
            stats.num_ops as f64,
            Unit::Count,
        );
        report.add(
            SECTION,
            &data,
            &format!("{name}: changes"),
            stats.num_changes as f64,
            Unit::Count,
        );
        report.add(
            SECTION,
            &data,
            &format!("{name}: save()"),
            bytes.len() as f64,
            Unit::Bytes,
        );
        report.add(
            SECTION,
            &data,
            &format!("{name}: load"),
            load.median(),
            Unit::Ms,
        );
    }

    // The 28-day query, scanning as today and by a key range over time-ordered ids.
    let me = docs.me;
    let to = summary
        .last_date
        .ok_or_else(|| BenchError::Check("the generator produced no days".into()))?;
    let from = to - Days::new(27);
    let expected = docs.checkins_between(me, from, to);
    let keyed = time_keyed(&rows, opts.seed)?;
    let mut scan = Samples::default();
    let mut ranged = Samples::default();
    for _ in 0..opts.runs.max(1) {
        let started = Instant::now();
        let found = docs.checkins_between(me, from, to);
        scan.push(started.elapsed());
        let started = Instant::now();
        let found_by_range = range_query(&keyed, me, from, to)?;
        ranged.push(started.elapsed());
        // The private document adds the few private check-ins; compare the shared ones.
        let shared: Vec<_> = found
            .iter()
            .filter(|c| c.visibility != hearth_core::model::Visibility::Private)
            .map(|c| c.id)
            .collect();
        let mut by_range: Vec<_> = found_by_range.iter().map(|c| c.id).collect();
        by_range.sort();
        let mut shared_sorted = shared.clone();
        shared_sorted.sort();
        if by_range.len() != shared_sorted.len() || found.len() != expected.len() {
            return Err(BenchError::Check(format!(
                "the range query found {} shared check-ins, the scan {}",
                by_range.len(),
                shared_sorted.len()
            )));
        }
    }
    report.add(
        SECTION,
        &data,
        "28-day query, scan (today)",
        scan.median(),
        Unit::Ms,
    );
    report.add(
        SECTION,
        &data,
        "28-day query, key range on time-ordered ids",
        ranged.median(),
        Unit::Ms,
    );
    Ok(())
}

/// Partner A's household records, oldest first.
fn rows(docs: &Docs) -> Result<Vec<Row>, BenchError> {
    let mut rows = Vec::new();
    for p in docs.people() {
        rows.push(row(&p, p.joined_at, false)?);
    }
    for d in docs.devices() {
        rows.push(row(&d, d.added_at, false)?);
    }
    for i in docs.ledger_items() {
        rows.push(row(&i, i.created_at, false)?);
    }
    for h in docs.handoffs() {
        rows.push(row(&h, h.when.at, false)?);
    }
    for c in docs.household.all::<CheckIn>() {
        rows.push(row(&c, c.when.at, true)?);
    }
    for r in docs.household.all::<hearth_core::model::Reflection>() {
        rows.push(row(&r, r.when.at, true)?);
    }
    for d in docs.done_entries() {
        rows.push(row(&d, d.when.at, true)?);
    }
    for a in docs.acks() {
        rows.push(row(&a, a.when.at, true)?);
    }
    for m in docs.moments() {
        rows.push(row(&m, m.when.at, true)?);
    }
    rows.sort_by_key(|r| r.at);
    Ok(rows)
}

/// A fresh household document with `rows` written in the chosen layout.
fn build(rows: &[Row], scalar: bool, per_day: bool) -> Result<Automerge, BenchError> {
    let mut am = Doc::new(DocKind::Household, ActorId::from(vec![9u8; 16]))
        .automerge()
        .clone();
    let mut colls = std::collections::BTreeMap::new();
    for coll in Collection::ALL {
        match am.get(automerge::ROOT, coll.key())? {
            Some((_, id)) => {
                colls.insert(coll, id);
            }
            None => return Err(BenchError::Check("the genesis lacks a collection".into())),
        }
    }
    let mut start = 0;
    while start < rows.len() {
        let end = if per_day {
            let day = rows[start].at.div_euclid(generate::DAY_MS);
            rows[start..]
                .iter()
                .position(|r| r.at.div_euclid(generate::DAY_MS) != day)
                .map_or(rows.len(), |n| start + n)
        } else {
            start + 1
        };
        let batch = &rows[start..end];
        am.transact_with(
            |_| CommitOptions::default().with_time(batch[0].at / 1000),
            |tx| -> Result<(), automerge::AutomergeError> {
                for r in batch {
                    let coll = &colls[&r.coll];
                    if scalar && r.append_only {
                        let text = Json::Object(r.fields.clone()).to_string();
                        tx.put(coll, r.key.as_str(), text)?;
                    } else {
                        let obj = tx.put_object(coll, r.key.as_str(), ObjType::Map)?;
                        write_fields(tx, &obj, &r.fields, true)?;
                    }
                }
                Ok(())
            },
        )
        .map_err(|f| BenchError::Automerge(f.error))?;
        start = end;
    }
    Ok(am)
}

fn write_fields<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    fields: &serde_json::Map<String, Json>,
    top: bool,
) -> Result<(), automerge::AutomergeError> {
    for (key, value) in fields {
        let key = key.as_str();
        match value {
            Json::Object(inner) => {
                let child = tx.put_object(obj, key, ObjType::Map)?;
                write_fields(tx, &child, inner, false)?;
            }
            Json::Array(items) => {
                let list = tx.put_object(obj, key, ObjType::List)?;
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = scalar(item) {
                        tx.insert(&list, i, s)?;
                    }
                }
            }
            Json::String(text) if top && (key == "title" || key == "good_enough") => {
                let id = tx.put_object(obj, key, ObjType::Text)?;
                tx.splice_text(&id, 0, 0, text)?;
            }
            other => {
                if let Some(s) = scalar(other) {
                    tx.put(obj, key, s)?;
                }
            }
        }
    }
    Ok(())
}

fn scalar(v: &Json) -> Option<ScalarValue> {
    match v {
        Json::Bool(b) => Some(ScalarValue::Boolean(*b)),
        Json::Number(n) => n
            .as_i64()
            .map(ScalarValue::Int)
            .or_else(|| n.as_f64().map(ScalarValue::F64)),
        Json::String(s) => Some(ScalarValue::Str(s.as_str().into())),
        _ => None,
    }
}

/// Today's layout, but check-ins keyed by a UUIDv7 whose timestamp is `when.at`, so keys
/// sort by time.
fn time_keyed(rows: &[Row], seed: u64) -> Result<Doc, BenchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rekeyed: Vec<Row> = rows
        .iter()
        .filter(|r| r.coll == Collection::CheckIns)
        .map(|r| {
            let random: [u8; 10] = rng.gen();
            let id =
                uuid::Builder::from_unix_timestamp_millis(r.at.max(0) as u64, &random).into_uuid();
            let mut fields = r.fields.clone();
            fields.insert("id".into(), Json::String(id.to_string()));
            Row {
                coll: r.coll,
                key: id.to_string(),
                fields,
                at: r.at,
                append_only: r.append_only,
            }
        })
        .collect();
    let am = build(&rekeyed, false, false)?;
    Ok(Doc::from_automerge(
        DocKind::Household,
        am,
        ActorId::from(vec![3u8; 16]),
    ))
}

/// Check-ins of `person` on local dates `from..=to`, reading only keys in the time range
/// that can hold those dates (local dates are at most 14 hours off UTC).
fn range_query(
    doc: &Doc,
    person: uuid::Uuid,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<CheckIn>, BenchError> {
    let am = doc.automerge();
    let Some((_, coll)) = am.get(automerge::ROOT, Collection::CheckIns.key())? else {
        return Err(BenchError::Check("no check-ins collection".into()));
    };
    let margin = 14 * 3_600_000;
    let start = from
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis() - margin);
    let end = (to + Days::new(1))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis() + margin);
    let (Some(start), Some(end)) = (start, end) else {
        return Err(BenchError::Check("date out of range".into()));
    };
    let key = |ms: Millis, fill: u8| {
        uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &[fill; 10])
            .into_uuid()
            .to_string()
    };
    let (lo, hi) = (key(start, 0), key(end, 0xff));
    let author = person.to_string();
    let (from, to) = (from.to_string(), to.to_string());
    let mut out = Vec::new();
    for item in am.map_range(&coll, lo..=hi) {
        if let Some(c) = doc.get::<CheckIn>(&item.key).map_err(Box::new)? {
            let date = c.when.date.to_string();
            if c.author.to_string() == author && date >= from && date <= to {
                out.push(c);
            }
        }
    }
    Ok(out)
}
