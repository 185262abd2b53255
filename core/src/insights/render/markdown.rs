//! The report as Markdown: the same content as the HTML report, as text.

use std::fmt::Write as _;

use super::super::{BalanceDirection, Insights, Shares};
use super::{
    band_text, basis_text, battery_now, clean, count_sparkline, data_text, plural, rate_word,
    recovery_text, series, signal_subject, signs_now, span_text, sparkline, spread_text,
};
use crate::model::Answer;

/// One mark per person in household order, for the drawn split.
const MARKS: [char; 4] = ['█', '░', '▓', '▒'];
/// Width of a drawn split.
const SPLIT_WIDTH: u32 = 20;

/// A split drawn as a bar of marks, people in the order of `order`.
fn split_bar(order: &Shares, shares: &Shares) -> String {
    if shares.no_load {
        return "·".repeat(SPLIT_WIDTH as usize);
    }
    let loads: Vec<u64> = order
        .shares
        .iter()
        .map(|o| {
            shares
                .shares
                .iter()
                .find(|s| s.person == o.person)
                .map_or(0, |s| u64::from(s.load))
        })
        .collect();
    let cells = super::super::balance::apportion(&loads, SPLIT_WIDTH);
    cells
        .iter()
        .enumerate()
        .map(|(i, n)| {
            MARKS[i.min(MARKS.len() - 1)]
                .to_string()
                .repeat(*n as usize)
        })
        .collect()
}

/// Escapes characters that Markdown would read as formatting, and table pipes.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // Parentheses and `!` only matter next to brackets, which are escaped.
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn name(report: &Insights, person: super::super::PersonId) -> String {
    md(&clean(report.name_of(person)))
}

/// Renders the report as Markdown.
pub fn render_markdown(report: &Insights) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# How we are doing\n");
    let _ = writeln!(m, "A Hearth report for the {}.\n", span_text(report));
    let _ = writeln!(m, "_{}_\n", md(&report.note));

    let _ = writeln!(m, "## What stands out\n");
    if report.signals.is_empty() {
        let _ = writeln!(m, "Nothing stands out right now.\n");
    }
    for s in &report.signals {
        let who = signal_subject(report, s)
            .map(|n| format!(" · {}", md(&n)))
            .unwrap_or_default();
        let _ = writeln!(
            m,
            "- **{}**{who}: {} _({})_",
            md(s.key.title()),
            md(&s.why),
            md(&basis_text(&s.rests_on))
        );
    }

    let _ = writeln!(m, "\n## Next steps\n");
    for (i, s) in report.suggestions.iter().enumerate() {
        let _ = writeln!(m, "{}. {}", i + 1, md(&s.text));
    }
    if let Some(order) = recovery_text(report) {
        let _ = writeln!(m, "\n{}", md(&order));
    }

    let weeks = report.weeks.len();
    let _ = writeln!(m, "\n## Battery and signs over time\n");
    let _ = writeln!(
        m,
        "One mark per week for the last {weeks}, oldest first; `·` is a week with too few check-ins. Each person is measured against their own usual level only.\n"
    );
    if report.trends.is_empty() {
        let _ = writeln!(m, "Nobody has checked in yet.");
    } else {
        let _ = writeln!(
            m,
            "| Who | Battery by week | Last 7 days | Signs by week | Last 7 days |"
        );
        let _ = writeln!(m, "|---|---|---|---|---|");
        for t in &report.trends {
            let (battery, signs) = series(t, weeks);
            let _ = writeln!(
                m,
                "| {} | `{}` | {} | `{}` | {} |",
                name(report, t.person),
                sparkline(&battery, 0.0, 100.0),
                md(&battery_now(t)),
                sparkline(&signs, 0.0, 4.0),
                md(&signs_now(t))
            );
        }
    }

    let b = &report.balance;
    let _ = writeln!(m, "\n## Who holds what\n");
    let _ = writeln!(
        m,
        "Shares of the weighted load of {} active ledger items, in household order. A picture of the split, not a score.\n",
        b.active_items
    );
    let people: Vec<String> = b
        .overall
        .shares
        .iter()
        .map(|s| name(report, s.person))
        .collect();
    if !people.is_empty() {
        // The split is drawn, one mark per person, rather than put as a number under
        // each name, which would read as a score.
        let legend: Vec<String> = b
            .overall
            .shares
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "`{}` {}",
                    MARKS[i.min(MARKS.len() - 1)],
                    name(report, s.person)
                )
            })
            .collect();
        let _ = writeln!(m, "{}\n", legend.join(" · "));
        let _ = writeln!(m, "| | Split | Band |");
        let _ = writeln!(m, "|---|---|---|");
        let row = |m: &mut String, label: &str, shares: &Shares| {
            let _ = writeln!(
                m,
                "| {} | `{}` | {} |",
                md(label),
                split_bar(&b.overall, shares),
                band_text(shares)
            );
        };
        row(&mut m, "overall", &b.overall);
        row(&mut m, "invisible stages", &b.invisible_stages);
        for s in &b.by_stage {
            row(&mut m, &format!("stage: {}", s.stage.key()), &s.shares);
        }
        for d in &b.by_domain {
            row(
                &mut m,
                &format!("{} ({})", d.domain.key(), plural(d.items, "item", "items")),
                &d.shares,
            );
        }
    }
    let direction = match b.direction {
        BalanceDirection::Steady => "steady",
        BalanceDirection::EveningOut => "evening out",
        BalanceDirection::MoreUneven => "becoming more uneven",
        BalanceDirection::Unknown => "not enough to tell yet",
    };
    let _ = writeln!(
        m,
        "\nOver the last {} weeks the split has been {direction}.",
        b.trend.len()
    );
    for w in b.invisible_work.iter().filter(|w| w.done > 0) {
        let _ = writeln!(
            m,
            "\n- {}: {} pieces of unseen work, {} not yet acknowledged",
            name(report, w.person),
            w.done,
            w.unacknowledged
        );
    }

    let _ = writeln!(m, "\n## Moments and acknowledgments\n");
    for (label, counts) in [
        ("Moments", &report.connection.moments),
        ("Acknowledgments", &report.connection.acknowledgments),
    ] {
        let weekly: Vec<u32> = counts.weekly.iter().map(|w| w.total).collect();
        let by = spread_text(
            &counts.recent.by,
            if label == "Moments" {
                "started"
            } else {
                "given"
            },
            report.params.balanced_max_pct,
        );
        let _ = writeln!(
            m,
            "- {label} `{}`: {:.1} a week lately, {}.{}",
            count_sparkline(&weekly),
            counts.recent.per_week,
            rate_word(counts.trend),
            by.map(|b| format!(" {b}")).unwrap_or_default()
        );
    }

    if !report.reflections.is_empty() {
        let _ = writeln!(m, "\n## Reflections\n");
        let _ = writeln!(m, "| Who | When | More energy | Safe | Aligned |");
        let _ = writeln!(m, "|---|---|---|---|---|");
        let word = |a: Answer| a.label();
        for r in &report.reflections {
            let _ = writeln!(
                m,
                "| {}{} | {} | {} | {} | {} |",
                name(report, r.person),
                if r.private { " (private)" } else { "" },
                r.date,
                word(r.energy),
                r.safe.map_or("theirs", word),
                word(r.aligned)
            );
        }
    }

    let _ = writeln!(m, "\n---\n\n{}", md(&data_text(report)));
    m
}
