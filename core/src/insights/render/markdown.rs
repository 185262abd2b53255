//! The report as Markdown: the same content as the HTML report, as text.

use std::fmt::Write as _;

use super::super::{BalanceDirection, Insights, Shares};
use super::{
    band_text, basis_text, battery_now, clean, count_sparkline, data_text, plural, rate_word,
    series, signal_subject, signs_now, span_text, sparkline,
};
use crate::model::Answer;

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
        let _ = writeln!(m, "| | {} | Band |", people.join(" | "));
        let _ = writeln!(m, "|---|{}---|", "---|".repeat(people.len()));
        let row = |m: &mut String, label: &str, shares: &Shares| {
            let cells: Vec<String> = b
                .overall
                .shares
                .iter()
                .map(|o| {
                    shares
                        .shares
                        .iter()
                        .find(|s| s.person == o.person)
                        .map_or_else(|| "–".to_string(), |s| format!("{}%", s.pct))
                })
                .collect();
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                md(label),
                cells.join(" | "),
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
        let by: Vec<String> = counts
            .recent
            .by
            .iter()
            .filter(|c| c.n > 0)
            .map(|c| format!("{} {}%", name(report, c.person), c.pct))
            .collect();
        let _ = writeln!(
            m,
            "- {label} `{}`: {:.1} a week lately, {}.{}",
            count_sparkline(&weekly),
            counts.recent.per_week,
            rate_word(counts.trend),
            if by.is_empty() {
                String::new()
            } else {
                format!(" By {}.", by.join(", "))
            }
        );
    }

    if !report.reflections.is_empty() {
        let _ = writeln!(m, "\n## Reflections\n");
        let _ = writeln!(m, "| Who | When | More energy | Safe | Aligned |");
        let _ = writeln!(m, "|---|---|---|---|---|");
        let word = |a: Answer| a.key();
        for r in &report.reflections {
            let _ = writeln!(
                m,
                "| {}{} | {} | {} | {} | {} |",
                name(report, r.person),
                if r.private { " (private)" } else { "" },
                r.date,
                word(r.energy),
                word(r.safe),
                word(r.aligned)
            );
        }
    }

    let _ = writeln!(m, "\n---\n\n{}", md(&data_text(report)));
    m
}
