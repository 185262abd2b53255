//! Rendering an [`Insights`] report as terminal text, Markdown or one self-contained
//! HTML file.
//!
//! Renderers only lay out what the report already says: they compute nothing new and
//! decide nothing about who may see what. Whatever reaches them is shown; leaving private
//! entries out happens earlier, when the inputs are built. They must never add anything
//! that reaches outside the file (no scripts, fonts, images or links), and they clean
//! names of control characters so a name cannot steer a terminal.

mod html;
mod markdown;
mod terminal;

pub use html::render_html;
pub use markdown::render_markdown;
pub use terminal::render_terminal;

use super::{Basis, Change, CountShare, Insights, PersonTrend, Shares, Signal};

/// Eight levels, lowest first.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// A week without enough data.
const GAP: char = '·';

/// A sparkline of values scaled from `lo` to `hi`, with a dot for missing weeks.
pub(crate) fn sparkline(values: &[Option<f64>], lo: f64, hi: f64) -> String {
    values
        .iter()
        .map(|v| match v {
            None => GAP,
            Some(v) => {
                let span = (hi - lo).max(f64::EPSILON);
                let t = ((v - lo) / span).clamp(0.0, 1.0);
                let i = (t * (BLOCKS.len() - 1) as f64).round() as usize;
                BLOCKS.get(i).copied().unwrap_or(GAP)
            }
        })
        .collect()
}

/// A name without control characters, so that it cannot move the cursor or change
/// colours, and never empty.
pub(crate) fn clean(text: &str) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "someone".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The person's position in the household, for colours and line styles.
pub(crate) fn slot(report: &Insights, person: super::PersonId) -> usize {
    report
        .people
        .iter()
        .position(|p| p.id == person)
        .unwrap_or(usize::MAX)
}

/// The name to show before a signal's *why*, or `None` for the couple.
pub(crate) fn signal_subject(report: &Insights, signal: &Signal) -> Option<String> {
    signal.person.map(|p| clean(report.name_of(p)))
}

/// "rests on 20 check-in days over four weeks".
pub(crate) fn basis_text(b: &Basis) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut add = |n: u32, one: &str, many: &str| {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    };
    add(b.checkin_days, "check-in day", "check-in days");
    add(b.items, "active item", "active items");
    add(b.done, "done entry", "done entries");
    add(b.moments, "moment", "moments");
    add(b.acks, "acknowledgment", "acknowledgments");
    add(b.handoffs, "handoff", "handoffs");
    add(b.reflections, "reflection", "reflections");
    let mut text = if parts.is_empty() {
        "rests on no records yet".to_string()
    } else {
        format!("rests on {}", parts.join(", "))
    };
    // Weeks end today, so one week is this week: say so, as a this-week signal rests
    // on this week's check-ins only.
    match b.weeks {
        0 => {}
        1 => text.push_str(" this week"),
        n => text.push_str(&format!(" over {n} weeks")),
    }
    text
}

/// Who started the moments (or gave the thank-yous) lately, in plain words that name
/// nobody: a share beside a name would read as a score. `done` is the verb, such as
/// "started" or "given". `None` when there were none.
pub(crate) fn spread_text(by: &[CountShare], done: &str, balanced_max_pct: u32) -> Option<String> {
    let total: u32 = by.iter().map(|c| c.n).sum();
    if total == 0 {
        return None;
    }
    let sides = by.iter().filter(|c| c.n > 0).count();
    let counts: Vec<u64> = by.iter().map(|c| u64::from(c.n)).collect();
    let most = super::balance::whole_percents(&counts)
        .into_iter()
        .max()
        .unwrap_or(0);
    Some(if sides == 1 && by.len() > 1 {
        format!("Lately they were all {done} from one side.")
    } else if sides == 1 {
        format!("Lately they were {done} by one person.")
    } else if most > balanced_max_pct {
        format!("Lately most were {done} from one side.")
    } else {
        format!("Lately they were {done} from both sides.")
    })
}

/// The whole order of recovery in one line, with where the couple stands:
/// "the basics (start here) → small moments (later) → …".
pub(crate) fn recovery_text(report: &Insights) -> Option<String> {
    if report.recovery.is_empty() {
        return None;
    }
    let parts: Vec<String> = report
        .recovery
        .iter()
        .map(|r| {
            let state = match r.state {
                super::StageState::Now => "start here",
                super::StageState::Also => "called for too",
                super::StageState::Later => "later",
                super::StageState::Steady => "fine for now",
            };
            format!("{} ({state})", r.step.title())
        })
        .collect();
    Some(format!("The order of recovery: {}.", parts.join(" → ")))
}

/// A word for a change against the usual level.
pub(crate) fn change_word(change: Change) -> &'static str {
    match change {
        Change::Higher => "higher",
        Change::Steady => "steady",
        Change::Lower => "lower",
        Change::Unknown => "no usual yet",
    }
}

/// The first trend window (normally seven days) in a short phrase: "62 (usual 70,
/// lower)".
pub(crate) fn battery_now(t: &PersonTrend) -> String {
    let Some(w) = t.windows.first() else {
        return String::new();
    };
    match (w.battery, t.baseline.battery) {
        (None, _) => "no check-ins lately".to_string(),
        (Some(b), Some(u)) => format!("{b:.0} (usual {u:.0}, {})", change_word(w.battery_change)),
        (Some(b), None) => format!("{b:.0} (usual not known yet)"),
    }
}

/// Like [`battery_now`], for the sign level.
pub(crate) fn signs_now(t: &PersonTrend) -> String {
    let Some(w) = t.windows.first() else {
        return String::new();
    };
    match (w.signs, t.baseline.signs) {
        (None, _) => "not rated lately".to_string(),
        (Some(s), Some(u)) => format!("{s:.1}/4 (usual {u:.1}, {})", change_word(w.signs_change)),
        (Some(s), None) => format!("{s:.1}/4 (usual not known yet)"),
    }
}

/// "64/36", in household order.
pub(crate) fn split_text(shares: &Shares) -> String {
    shares
        .shares
        .iter()
        .map(|s| s.pct.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The band of a split as words, or why there is none.
pub(crate) fn band_text(shares: &Shares) -> &'static str {
    match shares.band {
        Some(b) => b.key(),
        None if shares.no_load => "nothing assigned",
        None => "one person so far",
    }
}

/// "12 weeks to 30 Jun 2024".
pub(crate) fn span_text(report: &Insights) -> String {
    format!(
        "{} week{} to {}",
        report.weeks.len(),
        if report.weeks.len() == 1 { "" } else { "s" },
        report.today.format("%-d %b %Y")
    )
}

/// "1 reflection", "2 reflections".
pub(crate) fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the report rests on, in one sentence.
pub(crate) fn data_text(report: &Insights) -> String {
    let d = &report.data;
    let mut text = format!(
        "Based on {}, {}, {}, {}, {}, {} and {}.",
        plural(d.checkins, "check-in", "check-ins"),
        plural(d.reflections, "reflection", "reflections"),
        plural(d.items, "ledger item", "ledger items"),
        plural(d.done, "done entry", "done entries"),
        plural(d.acks, "acknowledgment", "acknowledgments"),
        plural(d.handoffs, "handoff", "handoffs"),
        plural(d.moments, "moment", "moments"),
    );
    if d.private_entries > 0 {
        text.push_str(&format!(
            " Includes {} of your own private entries.",
            d.private_entries
        ));
    }
    if d.future_dated > 0 {
        text.push_str(&format!(
            " Left out {} dated more than a day ahead.",
            plural(d.future_dated, "record", "records")
        ));
    }
    text
}

/// The weekly battery and sign series of a person, for the last `n` weeks.
pub(crate) fn series(t: &PersonTrend, n: usize) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let skip = t.weekly.len().saturating_sub(n);
    (
        t.weekly.iter().skip(skip).map(|w| w.battery).collect(),
        t.weekly.iter().skip(skip).map(|w| w.signs).collect(),
    )
}

/// A sparkline for counts, scaled to the largest week.
pub(crate) fn count_sparkline(counts: &[u32]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return "▁".repeat(counts.len());
    }
    let values: Vec<Option<f64>> = counts.iter().map(|c| Some(f64::from(*c))).collect();
    sparkline(&values, 0.0, f64::from(max))
}

/// The connection trend in words.
pub(crate) fn rate_word(change: Change) -> &'static str {
    match change {
        Change::Higher => "more than before",
        Change::Steady => "about as before",
        Change::Lower => "fewer than before",
        Change::Unknown => "too few before to compare",
    }
}

#[cfg(test)]
mod tests;
