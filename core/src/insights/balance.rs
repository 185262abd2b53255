//! Who holds what: shares of weighted load, their bands and trend, invisible work and
//! handoffs.
//!
//! Load is counted from ownership, not from effort logged: every stage of an active item
//! gives its owner the item's weight (1–3). Shares are listed in household order and are
//! never sorted by size, so the output cannot read as a ranking.

use std::collections::{BTreeMap, HashMap, HashSet};

use uuid::Uuid;

use crate::model::{
    Domain, HandoffState, ItemStatus, LedgerItem, Owners, PersonId, Stage, TargetKind, When,
};

use super::{
    Balance, BalanceDirection, BalancePoint, Band, Calendar, DomainShares, HandoffCounts,
    InsightInputs, InvisibleWork, Params, Share, Shares, StageShares,
};

/// Loads per person for one way of slicing the ledger.
type Loads = BTreeMap<PersonId, u64>;

/// An item's weight, read as 1–3 whatever the record says.
fn weight(item: &LedgerItem) -> u64 {
    u64::from(item.weight.clamp(1, 3))
}

/// Splits `loads` into shares, listing `order` first and anyone else after, by id.
pub(super) fn shares(order: &[PersonId], loads: &Loads, params: &Params) -> Shares {
    let mut people: Vec<PersonId> = order.to_vec();
    people.extend(loads.keys().filter(|p| !order.contains(p)));
    let parts: Vec<u64> = people
        .iter()
        .map(|p| loads.get(p).copied().unwrap_or(0))
        .collect();
    let total: u64 = parts.iter().sum();
    let pcts = whole_percents(&parts);
    let band = if total > 0 && people.len() >= 2 {
        let max = parts.iter().copied().max().unwrap_or(0);
        Some(band(max, total, params))
    } else {
        None
    };
    Shares {
        load: saturate(total),
        no_load: total == 0,
        shares: people
            .into_iter()
            .zip(parts.iter().zip(pcts))
            .map(|(person, (load, pct))| Share {
                person,
                load: saturate(*load),
                pct,
            })
            .collect(),
        band,
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn band(max: u64, total: u64, params: &Params) -> Band {
    // Compared in integers so that exactly 60/40 is balanced and exactly 70/30 leaning.
    let max = u128::from(max) * 100;
    let total = u128::from(total);
    if max <= u128::from(params.balanced_max_pct) * total {
        Band::Balanced
    } else if max <= u128::from(params.leaning_max_pct) * total {
        Band::Leaning
    } else {
        Band::Heavy
    }
}

/// Whole percents that sum to exactly 100, or all zero when the total is zero.
pub(super) fn whole_percents(parts: &[u64]) -> Vec<u32> {
    apportion(parts, 100)
}

/// Splits `whole` units in proportion to `parts` so that they sum to exactly `whole`
/// (largest remainder; ties go to the earlier part), or all zero when the parts are.
pub(crate) fn apportion(parts: &[u64], whole: u32) -> Vec<u32> {
    let total: u128 = parts.iter().map(|p| u128::from(*p)).sum();
    if total == 0 {
        return vec![0; parts.len()];
    }
    let mut out: Vec<u32> = Vec::with_capacity(parts.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let scaled = u128::from(*p) * u128::from(whole);
        out.push(u32::try_from(scaled / total).unwrap_or(whole));
        remainders.push((scaled % total, i));
    }
    let given: u32 = out.iter().sum();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders
        .into_iter()
        .take(whole.saturating_sub(given) as usize)
    {
        if let Some(p) = out.get_mut(i) {
            *p += 1;
        }
    }
    out
}

/// The loads of one moment's ownership.
#[derive(Default)]
struct Tally {
    overall: Loads,
    invisible: Loads,
    by_stage: BTreeMap<Stage, Loads>,
    by_domain: BTreeMap<Domain, (u32, Loads)>,
    unassigned: u64,
    items: u32,
}

fn tally<'a>(items: impl Iterator<Item = (&'a LedgerItem, &'a Owners)>) -> Tally {
    let mut t = Tally::default();
    for (item, owners) in items {
        let w = weight(item);
        t.items += 1;
        let domain = t.by_domain.entry(item.domain).or_default();
        domain.0 += 1;
        for stage in Stage::ALL {
            let Some(owner) = owners.get(*stage) else {
                t.unassigned += w;
                continue;
            };
            *t.overall.entry(owner).or_insert(0) += w;
            *domain.1.entry(owner).or_insert(0) += w;
            *t.by_stage
                .entry(*stage)
                .or_default()
                .entry(owner)
                .or_insert(0) += w;
            if stage.is_invisible() {
                *t.invisible.entry(owner).or_insert(0) += w;
            }
        }
    }
    t
}

pub(super) fn balance(
    inputs: &InsightInputs,
    ids: &[PersonId],
    cal: &Calendar,
    params: &Params,
) -> Balance {
    let active: Vec<&LedgerItem> = inputs
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Active)
        .collect();
    let now = tally(active.iter().map(|i| (*i, &i.owners)));
    let empty = Loads::new();

    let trend = trend(&active, inputs, ids, cal, params);
    let direction = direction(&trend, params);

    Balance {
        active_items: now.items,
        unassigned_load: saturate(now.unassigned),
        overall: shares(ids, &now.overall, params),
        invisible_stages: shares(ids, &now.invisible, params),
        by_domain: now
            .by_domain
            .iter()
            .map(|(domain, (items, loads))| DomainShares {
                domain: *domain,
                items: *items,
                shares: shares(ids, loads, params),
            })
            .collect(),
        by_stage: Stage::ALL
            .iter()
            .map(|stage| StageShares {
                stage: *stage,
                shares: shares(ids, now.by_stage.get(stage).unwrap_or(&empty), params),
            })
            .collect(),
        trend,
        direction,
        invisible_work: invisible_work(inputs, ids, cal),
        handoffs: handoff_counts(inputs, cal),
    }
}

/// The split at the end of each recent week, oldest first. Ownership back then is
/// estimated by undoing, newest first, every handoff accepted after that day; items
/// added after that day are left out. Other edits of owners have no history to undo.
fn trend(
    active: &[&LedgerItem],
    inputs: &InsightInputs,
    ids: &[PersonId],
    cal: &Calendar,
    params: &Params,
) -> Vec<BalancePoint> {
    let mut accepted: Vec<(i64, u32, Uuid, Stage, PersonId, PersonId)> = inputs
        .handoffs
        .iter()
        .filter(|h| h.state == HandoffState::Accepted)
        .map(|h| {
            let at = h.answered_at.unwrap_or(h.when.at);
            let date = When::from_utc(at, h.when.utc_offset_min).date;
            // An answer dated after today's tolerance is read as today's.
            let age = cal.age(date).unwrap_or(0);
            (at, age, h.item, h.stage, h.from, h.to)
        })
        .collect();
    // Newest first, so that undoing walks back through time.
    accepted.sort_by_key(|a| std::cmp::Reverse(a.0));

    (0..params.recent_weeks)
        .rev()
        .map(|k| {
            let end_age = k.saturating_mul(7);
            let mut owners: HashMap<Uuid, Owners> = HashMap::new();
            let existing: Vec<&LedgerItem> = active
                .iter()
                .copied()
                .filter(|i| {
                    k == 0
                        || cal
                            .age(When::from_utc(i.created_at, 0).date)
                            .is_some_and(|age| age >= end_age)
                })
                .collect();
            for item in &existing {
                owners.insert(item.id, item.owners.clone());
            }
            for (_, age, item, stage, from, to) in &accepted {
                if *age >= end_age {
                    continue;
                }
                if let Some(o) = owners.get_mut(item) {
                    if o.get(*stage) == Some(*to) {
                        o.set(*stage, Some(*from));
                    }
                }
            }
            let t = tally(
                existing
                    .iter()
                    .filter_map(|i| owners.get(&i.id).map(|o| (*i, o))),
            );
            BalancePoint {
                end: cal.back(end_age),
                overall: shares(ids, &t.overall, params),
                invisible_stages: shares(ids, &t.invisible, params),
            }
        })
        .collect()
}

/// The largest share's fraction, when there is something to split between two or more.
fn largest_fraction(shares: &Shares) -> Option<f64> {
    if shares.no_load || shares.shares.len() < 2 {
        return None;
    }
    let max = shares.shares.iter().map(|s| s.load).max()?;
    Some(f64::from(max) / f64::from(shares.load.max(1)))
}

fn direction(trend: &[BalancePoint], params: &Params) -> BalanceDirection {
    let (Some(first), Some(last)) = (trend.first(), trend.last()) else {
        return BalanceDirection::Unknown;
    };
    let (Some(then), Some(now)) = (
        largest_fraction(&first.overall),
        largest_fraction(&last.overall),
    ) else {
        return BalanceDirection::Unknown;
    };
    let moved = (now - then) * 100.0;
    let step = f64::from(params.balance_trend_pct);
    if moved >= step {
        BalanceDirection::MoreUneven
    } else if moved <= -step {
        BalanceDirection::EveningOut
    } else {
        BalanceDirection::Steady
    }
}

/// Invisible work done in the recent stretch and how much of it nobody acknowledged.
/// Unlisted work counts as invisible: that it needed logging by hand is the point. An
/// acknowledgment of the done entry, or of its item on or after the day, covers it.
fn invisible_work(inputs: &InsightInputs, ids: &[PersonId], cal: &Calendar) -> Vec<InvisibleWork> {
    let recent = cal.recent_days();
    let items: HashMap<Uuid, &LedgerItem> = inputs.items.iter().map(|i| (i.id, i)).collect();
    let acked_done: HashSet<Uuid> = inputs
        .acks
        .iter()
        .filter(|a| a.target.kind == TargetKind::Done)
        .map(|a| a.target.id)
        .collect();
    let mut acked_item: HashMap<Uuid, chrono::NaiveDate> = HashMap::new();
    for a in inputs
        .acks
        .iter()
        .filter(|a| a.target.kind == TargetKind::Item)
    {
        let latest = acked_item.entry(a.target.id).or_insert(a.when.date);
        if a.when.date > *latest {
            *latest = a.when.date;
        }
    }

    let mut per: BTreeMap<PersonId, InvisibleWork> = BTreeMap::new();
    for d in &inputs.done {
        if cal.age(d.when.date).is_none_or(|age| age >= recent) {
            continue;
        }
        let invisible = match d.item {
            None => true,
            Some(id) => items.get(&id).is_some_and(|i| i.invisible),
        };
        if !invisible {
            continue;
        }
        let seen = acked_done.contains(&d.id)
            || d.item
                .and_then(|id| acked_item.get(&id))
                .is_some_and(|date| *date >= d.when.date);
        let w = per.entry(d.by).or_insert(InvisibleWork {
            person: d.by,
            done: 0,
            unacknowledged: 0,
            minutes: 0,
        });
        w.done = w.done.saturating_add(1);
        if !seen {
            w.unacknowledged = w.unacknowledged.saturating_add(1);
        }
        w.minutes = w.minutes.saturating_add(d.minutes.unwrap_or(0));
    }
    let mut out: Vec<InvisibleWork> = ids
        .iter()
        .map(|id| {
            per.remove(id).unwrap_or(InvisibleWork {
                person: *id,
                done: 0,
                unacknowledged: 0,
                minutes: 0,
            })
        })
        .collect();
    out.extend(per.into_values());
    out
}

fn handoff_counts(inputs: &InsightInputs, cal: &Calendar) -> HandoffCounts {
    let recent = cal.recent_days();
    let mut c = HandoffCounts::default();
    for h in &inputs.handoffs {
        if cal.age(h.when.date).is_none_or(|age| age >= recent) {
            continue;
        }
        let slot = match h.state {
            HandoffState::Open => &mut c.open,
            HandoffState::Accepted => &mut c.accepted,
            HandoffState::Declined => &mut c.declined,
            HandoffState::Countered => &mut c.countered,
            HandoffState::Withdrawn => &mut c.withdrawn,
        };
        *slot = slot.saturating_add(1);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_percents_sum_to_100_with_ties_to_the_earlier() {
        assert_eq!(whole_percents(&[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(whole_percents(&[2, 1]), vec![67, 33]);
        assert_eq!(whole_percents(&[0, 0]), vec![0, 0]);
        assert_eq!(whole_percents(&[5, 0]), vec![100, 0]);
    }

    #[test]
    fn bands_include_their_upper_limit() {
        let p = Params::default();
        assert_eq!(band(60, 100, &p), Band::Balanced);
        assert_eq!(band(61, 100, &p), Band::Leaning);
        assert_eq!(band(70, 100, &p), Band::Leaning);
        assert_eq!(band(71, 100, &p), Band::Heavy);
    }
}
