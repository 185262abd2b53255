//! Signals: what is worth noticing, each with one plain line on why and the counts it
//! rests on.
//!
//! Signals describe a pattern in the records; they never judge a person and never compare
//! one partner's levels with the other's. The *why* lines leave out the person's name so
//! that each renderer can place it naturally.

use crate::model::{Answer, BodySign, PersonId, Reflection};

use super::{
    Balance, Band, Basis, Calendar, Connection, Params, PersonTrend, ReflectionSummary, Shares,
    Signal, SignalKey, WeeklyCounts,
};

/// Everything the signals look at.
pub(super) struct Context<'a> {
    pub(super) ids: &'a [PersonId],
    pub(super) trends: &'a [PersonTrend],
    pub(super) balance: &'a Balance,
    pub(super) connection: &'a Connection,
    pub(super) reflections: &'a [ReflectionSummary],
    pub(super) params: &'a Params,
}

/// Each person's latest reflection, if it is recent enough.
pub(super) fn latest_reflections(
    reflections: &[Reflection],
    ids: &[PersonId],
    viewer: Option<PersonId>,
    cal: &Calendar,
    params: &Params,
) -> Vec<ReflectionSummary> {
    ids.iter()
        .filter_map(|id| {
            reflections
                .iter()
                .filter(|r| r.author == *id)
                .filter(|r| {
                    cal.age(r.when.date)
                        .is_some_and(|age| age <= params.reflection_max_age_days)
                })
                .max_by_key(|r| (r.when.at, r.id))
                .map(|r| {
                    let own = viewer == Some(r.author);
                    ReflectionSummary {
                        person: r.author,
                        date: r.when.date,
                        energy: r.energy,
                        safe: own.then_some(r.safe),
                        aligned: r.aligned,
                        // What the three answers point to is for their author to weigh:
                        // read without the answer on feeling safe it could mislead, and
                        // with it, it would give that answer away.
                        all_yes: own && r.all_yes(),
                        private: r.visibility == crate::model::Visibility::Private,
                    }
                })
        })
        .collect()
}

/// Small numbers in words, larger ones as digits.
pub(super) fn number(n: u32) -> String {
    const WORDS: [&str; 11] = [
        "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    WORDS
        .get(n as usize)
        .map_or_else(|| n.to_string(), |w| (*w).to_string())
}

/// "the last week", "the last four weeks".
pub(super) fn last_weeks(n: u32) -> String {
    if n == 1 {
        "the last week".to_string()
    } else {
        format!("the last {} weeks", number(n))
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{} {one}", number(n))
    } else {
        format!("{} {many}", number(n))
    }
}

/// "sleep", "sleep and rest", "sleep, food and rest".
fn list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn signals(cx: &Context<'_>) -> Vec<Signal> {
    let p = cx.params;
    let mut out: Vec<Signal> = Vec::new();
    let recent_days = |t: &PersonTrend| t.recent.iter().map(|w| w.days).sum::<u32>();

    // People first: basics, then how the recent weeks went, then data gaps.
    for t in cx.trends {
        let days = recent_days(t);
        if let Some(s) = basics_first(t) {
            out.push(s);
        }
        if let Some(s) = body_signal(t, p) {
            out.push(s);
        }
        if days == 0 {
            continue;
        }
        if days < p.min_recent_days {
            out.push(Signal {
                key: SignalKey::NotEnoughData,
                person: Some(t.person),
                why: format!(
                    "Only {} in {}: not enough yet to tell what is usual.",
                    plural(days, "check-in day", "check-in days"),
                    last_weeks(p.recent_weeks)
                ),
                rests_on: Basis {
                    checkin_days: days,
                    weeks: p.recent_weeks,
                    ..Basis::default()
                },
            });
            continue;
        }
        if let Some(s) = elevation(t, p) {
            out.push(s);
        }
    }

    let with_data = cx.trends.iter().filter(|t| recent_days(t) > 0).count();
    if with_data == 0 {
        let anything = cx.trends.iter().any(|t| t.checkins > 0);
        out.push(Signal {
            key: SignalKey::NotEnoughData,
            person: None,
            why: if anything {
                format!(
                    "No check-ins in {}, so there is nothing recent to read patterns from.",
                    last_weeks(p.recent_weeks)
                )
            } else {
                "Nothing has been checked in yet, so there are no patterns to show.".to_string()
            },
            rests_on: Basis {
                weeks: p.recent_weeks,
                ..Basis::default()
            },
        });
    } else if cx.ids.len() < 2 {
        out.push(Signal {
            key: SignalKey::NotEnoughData,
            person: None,
            why: "Only one person is in the household so far, so patterns for the two of you are not shown.".to_string(),
            rests_on: Basis::default(),
        });
    } else if with_data < 2 {
        out.push(Signal {
            key: SignalKey::NotEnoughData,
            person: None,
            why: format!(
                "Only one of you has checked in during {}, so patterns for the two of you together are not shown.",
                last_weeks(p.recent_weeks)
            ),
            rests_on: Basis {
                weeks: p.recent_weeks,
                ..Basis::default()
            },
        });
    }

    // The couple.
    let moments = drop_signal(
        &cx.connection.moments,
        p,
        SignalKey::FewerMoments,
        SignalKey::NobodyStarting,
        "moments together",
    );
    let acks = drop_signal(
        &cx.connection.acknowledgments,
        p,
        SignalKey::FewerAcks,
        SignalKey::FewerAcks,
        "thank-yous and acknowledgments",
    );
    let handoffs = handoffs_declined(cx.balance, p);
    if let Some(s) = both_depleted(cx, moments.as_ref(), acks.as_ref(), handoffs.as_ref()) {
        out.push(s);
    }
    out.extend(moments);
    out.extend(acks);
    out.extend(handoffs);
    out.extend(balance_signal(cx));
    for w in &cx.balance.invisible_work {
        if w.unacknowledged >= p.min_unacknowledged {
            out.push(Signal {
                key: SignalKey::UnacknowledgedInvisibleWork,
                person: Some(w.person),
                why: format!(
                    "{} of invisible work in {} that nobody has acknowledged yet.",
                    capitalize(&plural(w.unacknowledged, "piece", "pieces")),
                    last_weeks(p.recent_weeks)
                ),
                rests_on: Basis {
                    done: w.done,
                    weeks: p.recent_weeks,
                    ..Basis::default()
                },
            });
        }
    }
    for r in cx.reflections {
        out.push(reflection_signal(r));
    }

    // Display order: by kind, then the couple before each person in household order.
    let position = |person: Option<PersonId>| match person {
        None => 0,
        Some(id) => cx
            .ids
            .iter()
            .position(|i| *i == id)
            .map_or(usize::MAX, |i| i + 1),
    };
    out.sort_by_key(|s| (s.key, position(s.person)));
    out
}

fn basics_first(t: &PersonTrend) -> Option<Signal> {
    if t.basics_unmet_last_week.is_empty() {
        return None;
    }
    let words: Vec<&str> = t.basics_unmet_last_week.keys().map(|b| b.word()).collect();
    let days = t.recent.last().map_or(0, |w| w.basics_unmet_days);
    let checkin_days = t.recent.last().map_or(0, |w| w.days);
    let verb = if words.len() == 1 { "was" } else { "were" };
    Some(Signal {
        key: SignalKey::BasicsFirst,
        person: Some(t.person),
        why: format!(
            "{} {verb} logged as not met on {} this week; the basics come before anything else.",
            capitalize(&list(&words)),
            plural(days, "day", "days"),
        ),
        rests_on: Basis {
            checkin_days,
            weeks: 1,
            ..Basis::default()
        },
    })
}

/// Body signs that came up often lately, with how they line up with sleep and rest.
/// Phrased as what the body may be asking for, never as what it means.
fn body_signal(t: &PersonTrend, p: &Params) -> Option<Signal> {
    let mut often: Vec<(BodySign, u32)> = t
        .body_signs_recent
        .iter()
        .filter(|(_, n)| **n >= p.min_body_checkins)
        .map(|(s, n)| (*s, *n))
        .collect();
    if often.is_empty() {
        return None;
    }
    // The most frequent first; at most three, so the line stays readable.
    often.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    often.truncate(3);
    let words: Vec<&str> = often.iter().map(|(s, _)| s.phrase()).collect();
    let with_body = t.body_checkins_recent;
    let short = t.body_with_short_rest;
    let rest = if short * 2 > with_body {
        "They mostly came on days when sleep or rest fell short, so the body may be asking for more of both."
    } else {
        "They came on days with enough sleep and rest too, so the body may be asking for gentleness in other ways."
    };
    Some(Signal {
        key: SignalKey::BodySigns,
        person: Some(t.person),
        why: format!(
            "{} came up often in {}. {rest} If it lasts, a doctor is a good person to talk to.",
            capitalize(&list(&words)),
            last_weeks(p.recent_weeks)
        ),
        rests_on: Basis {
            checkin_days: t.recent.iter().map(|w| w.days).sum(),
            weeks: p.recent_weeks,
            ..Basis::default()
        },
    })
}

/// Lingering or a rough patch, from which recent weeks were elevated.
fn elevation(t: &PersonTrend, p: &Params) -> Option<Signal> {
    let weeks = &t.recent;
    let elevated: Vec<bool> = weeks.iter().map(|w| w.elevated == Some(true)).collect();
    let n = elevated.iter().filter(|e| **e).count() as u32;
    if n == 0 {
        return None;
    }
    let rested_while_up = weeks.iter().any(|w| w.elevated == Some(true) && w.rested);
    // "Heavier than usual" only when every elevated week was above the person's own
    // usual level; a week that is only high on the fixed scale is just "heavy".
    let heavier = if weeks
        .iter()
        .filter(|w| w.elevated == Some(true))
        .all(|w| super::trend::above_usual(w, &t.baseline, p))
    {
        "heavier than usual"
    } else {
        "heavy"
    };
    let basis = Basis {
        checkin_days: weeks.iter().map(|w| w.days).sum(),
        weeks: p.recent_weeks,
        ..Basis::default()
    };
    let span = last_weeks(p.recent_weeks);
    if n >= p.lingering_weeks && rested_while_up {
        return Some(Signal {
            key: SignalKey::Lingering,
            person: Some(t.person),
            why: format!(
                "Things have felt {heavier} in {} of {span}, and a week with rest logged as met did not lift it.",
                number(n)
            ),
            rests_on: basis,
        });
    }
    let current = weeks.last().and_then(|w| w.elevated);
    let last_up = elevated.iter().rposition(|e| *e).unwrap_or(0);
    let why = if n >= p.lingering_weeks {
        format!(
            "Things have felt {heavier} in {} of {span}, with no rest logged as met in those weeks; a real rest may show whether it lifts.",
            number(n)
        )
    } else if current == Some(true) {
        // A this-week signal rests on this week's check-ins only, and says so.
        return Some(Signal {
            key: SignalKey::RoughPatch,
            person: Some(t.person),
            why: format!("This week looks {heavier}."),
            rests_on: Basis {
                checkin_days: weeks.last().map_or(0, |w| w.days),
                weeks: 1,
                ..Basis::default()
            },
        });
    } else if current == Some(false) {
        let ago = u32::try_from(weeks.len() - 1 - last_up).unwrap_or(0);
        let rested_since = weeks.iter().skip(last_up).any(|w| w.rested);
        let when = if ago == 1 {
            "last week".to_string()
        } else {
            format!("{} weeks ago", number(ago))
        };
        if rested_since {
            format!("A heavier stretch {when} eased after rest.")
        } else {
            format!("A heavier stretch {when} has eased since.")
        }
    } else {
        "A heavier week showed up recently; this week has too few check-ins to say how it is going."
            .to_string()
    };
    Some(Signal {
        key: SignalKey::RoughPatch,
        person: Some(t.person),
        why,
        rests_on: basis,
    })
}

/// Whether a person's latest judged week of the last two was elevated.
fn elevated_now(t: &PersonTrend) -> bool {
    t.recent
        .iter()
        .rev()
        .take(2)
        .find_map(|w| w.elevated)
        .unwrap_or(false)
}

fn both_depleted(
    cx: &Context<'_>,
    moments: Option<&Signal>,
    acks: Option<&Signal>,
    handoffs: Option<&Signal>,
) -> Option<Signal> {
    let low: Vec<&PersonTrend> = cx
        .trends
        .iter()
        .filter(|t| {
            t.recent.iter().map(|w| w.days).sum::<u32>() >= cx.params.min_recent_days
                && elevated_now(t)
        })
        .collect();
    if low.len() < 2 {
        return None;
    }
    let mut with: Vec<&str> = Vec::new();
    match moments.map(|s| s.key) {
        Some(SignalKey::NobodyStarting) => with.push("no moments together lately"),
        Some(_) => with.push("fewer moments together"),
        None => {}
    }
    if acks.is_some() {
        with.push("fewer thank-yous");
    }
    if handoffs.is_some() {
        with.push("handoffs declined");
    }
    let tail = if with.is_empty() {
        ".".to_string()
    } else {
        format!(", alongside {}.", list(&with))
    };
    Some(Signal {
        key: SignalKey::BothDepleted,
        person: None,
        why: format!("You both seem more worn down than usual at the same time{tail}"),
        rests_on: Basis {
            checkin_days: low
                .iter()
                .map(|t| t.recent.iter().rev().take(2).map(|w| w.days).sum::<u32>())
                .sum(),
            weeks: 2,
            moments: cx.connection.moments.recent.total,
            acks: cx.connection.acknowledgments.recent.total,
            handoffs: cx.balance.handoffs.declined + cx.balance.handoffs.accepted,
            ..Basis::default()
        },
    })
}

/// A drop in a weekly count: `none` when the recent stretch has none at all, `fewer`
/// when it fell under the ratio.
fn drop_signal(
    counts: &WeeklyCounts,
    p: &Params,
    fewer: SignalKey,
    none: SignalKey,
    what: &str,
) -> Option<Signal> {
    let (recent, earlier) = (counts.recent.total, counts.earlier.total);
    if earlier < p.min_connection_baseline {
        return None;
    }
    let span = last_weeks(p.recent_weeks);
    let rests_on = Basis {
        weeks: p.recent_weeks.saturating_mul(2),
        moments: if fewer == SignalKey::FewerMoments {
            recent + earlier
        } else {
            0
        },
        acks: if fewer == SignalKey::FewerAcks {
            recent + earlier
        } else {
            0
        },
        ..Basis::default()
    };
    if recent == 0 {
        return Some(Signal {
            key: none,
            person: None,
            why: format!(
                "No {what} logged in {span}, after {} in the {} weeks before.",
                number(earlier),
                number(p.recent_weeks)
            ),
            rests_on,
        });
    }
    if f64::from(recent) < p.fewer_ratio * f64::from(earlier) {
        return Some(Signal {
            key: fewer,
            person: None,
            why: format!(
                "{} {what} in {span}, after {} in the {} weeks before.",
                capitalize(&number(recent)),
                number(earlier),
                number(p.recent_weeks)
            ),
            rests_on,
        });
    }
    None
}

fn handoffs_declined(balance: &Balance, p: &Params) -> Option<Signal> {
    let h = &balance.handoffs;
    if h.declined < p.min_declined_handoffs || h.declined <= h.accepted {
        return None;
    }
    Some(Signal {
        key: SignalKey::HandoffsDeclined,
        person: None,
        why: format!(
            "{} declined in {}, and {}.",
            capitalize(&plural(h.declined, "handoff was", "handoffs were")),
            last_weeks(p.recent_weeks),
            match h.accepted {
                0 => "none was accepted".to_string(),
                n => format!("{} accepted", plural(n, "was", "were")),
            }
        ),
        rests_on: Basis {
            handoffs: h.open + h.accepted + h.declined + h.countered + h.withdrawn,
            weeks: p.recent_weeks,
            ..Basis::default()
        },
    })
}

/// The person holding the largest share, and that share.
fn largest(shares: &Shares) -> Option<(PersonId, u32)> {
    shares
        .shares
        .iter()
        .max_by(|a, b| a.load.cmp(&b.load).then(b.pct.cmp(&a.pct)))
        .map(|s| (s.person, s.pct))
}

fn balance_signal(cx: &Context<'_>) -> Option<Signal> {
    let b = cx.balance;
    if cx.ids.len() < 2 || b.active_items < cx.params.min_active_items {
        return None;
    }
    let overall = b.overall.band.unwrap_or(Band::Balanced);
    let invisible = b.invisible_stages.band.unwrap_or(Band::Balanced);
    let worst = overall.max(invisible);
    let key = match worst {
        Band::Balanced => return None,
        Band::Leaning => SignalKey::BalanceLeaning,
        Band::Heavy => SignalKey::BalanceHeavy,
    };
    let items = plural(b.active_items, "active item", "active items");
    // Words, not a percentage beside a name: a number there reads as a score. The
    // split itself is drawn in the balance section, with its caveat.
    let part = |band: Band| match band {
        Band::Heavy => "most",
        Band::Leaning | Band::Balanced => "the larger part",
    };
    let (person, why) = if invisible > overall {
        let (person, _) = largest(&b.invisible_stages)?;
        (
            person,
            format!(
                "Holds {} of the noticing and following up, the work nobody sees, across {items}.",
                part(invisible)
            ),
        )
    } else {
        let (person, _) = largest(&b.overall)?;
        let extra = largest(&b.invisible_stages)
            .filter(|(p, _)| *p == person)
            .filter(|_| invisible > Band::Balanced)
            .map(|_| ", and of the noticing and following up too".to_string())
            .unwrap_or_default();
        (
            person,
            format!(
                "Holds {} of the weighted load across {items}{extra}.",
                part(overall)
            ),
        )
    };
    Some(Signal {
        key,
        person: Some(person),
        why,
        rests_on: Basis {
            items: b.active_items,
            ..Basis::default()
        },
    })
}

fn reflection_signal(r: &ReflectionSummary) -> Signal {
    let rests_on = Basis {
        reflections: 1,
        ..Basis::default()
    };
    if r.all_yes {
        return Signal {
            key: SignalKey::ReflectionPointsToBurnout,
            person: Some(r.person),
            why: "Answered yes to wanting to work on this, feeling safe and wanting the same things: that points to running on empty rather than growing apart.".to_string(),
            rests_on,
        };
    }
    if r.safe.is_none() {
        return Signal {
            key: SignalKey::ReflectionShared,
            person: Some(r.person),
            why: "Shared a reflection. What it means is theirs to say: asking how they see things is a gentle place to start.".to_string(),
            rests_on,
        };
    }
    // `safe` is only ever the viewer's own answer, so this speaks to them alone.
    let why = if r.safe == Some(Answer::No) {
        "You answered no to feeling emotionally safe. That matters more than anything here: talking it through with someone you trust, outside the two of you, can help."
    } else {
        "Some answers were no or unsure. That calls for a calm conversation, maybe with someone to support you both."
    };
    Signal {
        key: SignalKey::ReflectionMixed,
        person: Some(r.person),
        why: why.to_string(),
        rests_on,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_naturally() {
        assert_eq!(list(&["sleep", "food", "rest"]), "sleep, food and rest");
        assert_eq!(list(&["rest"]), "rest");
        assert_eq!(last_weeks(4), "the last four weeks");
        assert_eq!(last_weeks(1), "the last week");
        assert_eq!(plural(1, "day", "days"), "one day");
        assert_eq!(plural(12, "day", "days"), "12 days");
        assert_eq!(capitalize("sleep and rest"), "Sleep and rest");
    }
}
