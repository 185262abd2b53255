//! The report as plain terminal text that fits 80 columns, with optional ANSI colour.
//!
//! Without colour every distinction is still there: each person has their own bar
//! character, and headings are in capitals.

use super::super::balance::apportion;
use super::super::{Insights, Shares};
use super::{
    band_text, basis_text, battery_now, clean, count_sparkline, data_text, rate_word,
    recovery_text, series, signal_subject, signs_now, slot, span_text, sparkline, split_text,
    spread_text,
};

/// The width everything fits in.
const WIDTH: usize = 80;
/// At most this many weeks of sparkline, so a row still fits the width.
const MAX_SPARK_WEEKS: usize = 26;
/// Width of a balance bar.
const BAR: u32 = 24;
/// Width of the name column.
const NAME_COL: usize = 9;
/// Width of a row label.
const LABEL_COL: usize = 14;

const BAR_CHARS: [char; 4] = ['█', '░', '▓', '▒'];
const COLOURS: [&str; 4] = ["\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m"];
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

struct Out {
    text: String,
    color: bool,
}

impl Out {
    fn line(&mut self, s: &str) {
        self.text.push_str(s.trim_end());
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    fn heading(&mut self, s: &str) {
        self.blank();
        let upper = s.to_uppercase();
        let styled = self.style(BOLD, &upper);
        self.line(&styled);
    }

    fn style(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("{code}{s}{RESET}")
        } else {
            s.to_string()
        }
    }

    fn person(&self, slot: usize, s: &str) -> String {
        self.style(COLOURS[slot.min(COLOURS.len() - 1)], s)
    }

    /// Wraps `text` to the width, starting with `first` and indenting the rest.
    fn wrapped(&mut self, first: &str, indent: usize, text: &str, code: Option<&str>) {
        let lead = first.chars().count().max(indent);
        for (i, line) in wrap(text, WIDTH.saturating_sub(lead))
            .into_iter()
            .enumerate()
        {
            let prefix = if i == 0 {
                format!("{first:<lead$}")
            } else {
                " ".repeat(indent.max(lead))
            };
            let body = match code {
                Some(code) => self.style(code, &line),
                None => line,
            };
            self.line(&format!("{prefix}{body}"));
        }
    }
}

/// Splits text into lines of at most `width` characters, breaking at spaces, and
/// breaking a word only when it alone is wider.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word: String = word.to_string();
        while word.chars().count() > width {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Cuts text to `n` characters, marking the cut.
fn fit(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(n.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Renders the report for a terminal. With `color`, people, headings and notes are
/// coloured with ANSI codes; without, the text is plain and still complete.
pub fn render_terminal(report: &Insights, color: bool) -> String {
    let mut out = Out {
        text: String::new(),
        color,
    };
    let title = format!("Hearth insights · {}", span_text(report));
    let title = out.style(BOLD, &title);
    out.line(&title);
    out.wrapped("", 0, &report.note, Some(DIM));

    signals(&mut out, report);
    steps(&mut out, report);
    trends(&mut out, report);
    balance(&mut out, report);
    connection(&mut out, report);

    out.blank();
    out.wrapped("", 0, &data_text(report), Some(DIM));
    out.text
}

fn signals(out: &mut Out, report: &Insights) {
    out.heading("What stands out");
    if report.signals.is_empty() {
        out.wrapped("  ", 2, "Nothing stands out right now.", None);
        return;
    }
    for s in &report.signals {
        let title = match signal_subject(report, s) {
            Some(name) => format!("{} · {}", s.key.title(), name),
            None => s.key.title().to_string(),
        };
        let title = fit(&title, WIDTH - 2);
        let title = out.style(BOLD, &title);
        out.line(&format!("• {title}"));
        out.wrapped("  ", 2, &s.why, None);
        out.wrapped(
            "  ",
            2,
            &format!("({})", basis_text(&s.rests_on)),
            Some(DIM),
        );
    }
}

fn steps(out: &mut Out, report: &Insights) {
    out.heading("Next steps");
    for (i, s) in report.suggestions.iter().enumerate() {
        out.wrapped(&format!("{}. ", i + 1), 3, &s.text, None);
    }
    if let Some(order) = recovery_text(report) {
        out.wrapped("", 0, &order, Some(DIM));
    }
}

fn trends(out: &mut Out, report: &Insights) {
    let weeks = report.weeks.len().min(MAX_SPARK_WEEKS);
    out.heading("How each of you is doing");
    out.wrapped(
        "",
        0,
        &format!(
            "Each against their own usual level; one mark per week for the last {weeks}, oldest first, · where there were too few check-ins. Numbers are the last 7 days."
        ),
        Some(DIM),
    );
    if report.trends.is_empty() {
        out.line("  Nobody has checked in yet.");
    }
    for t in &report.trends {
        let (battery, signs) = series(t, weeks);
        let name = fit(&clean(report.name_of(t.person)), NAME_COL - 1);
        let name = format!("{name:<width$}", width = NAME_COL);
        let name = out.person(slot(report, t.person), &name);
        out.line(&format!(
            "{name}{:<9}{}  {}",
            "battery",
            sparkline(&battery, 0.0, 100.0),
            battery_now(t)
        ));
        out.line(&format!(
            "{:<NAME_COL$}{:<9}{}  {}",
            "",
            "signs",
            sparkline(&signs, 0.0, 4.0),
            signs_now(t)
        ));
    }
}

fn bar(out: &Out, report: &Insights, shares: &Shares) -> String {
    if shares.no_load {
        return format!("{:<width$}", "·".repeat(BAR as usize), width = BAR as usize);
    }
    let loads: Vec<u64> = shares.shares.iter().map(|s| u64::from(s.load)).collect();
    let cells = apportion(&loads, BAR);
    let mut text = String::new();
    for (share, n) in shares.shares.iter().zip(cells) {
        let k = slot(report, share.person).min(BAR_CHARS.len() - 1);
        let seg: String = std::iter::repeat_n(BAR_CHARS[k], n as usize).collect();
        text.push_str(&out.person(k, &seg));
    }
    text
}

fn bar_row(out: &mut Out, report: &Insights, label: &str, shares: &Shares) {
    let bar = bar(out, report, shares);
    let split = if shares.no_load {
        String::new()
    } else {
        split_text(shares)
    };
    out.line(&format!(
        "  {:<width$}{bar}  {split}  {}",
        fit(label, LABEL_COL - 3),
        band_text(shares),
        width = LABEL_COL - 2
    ));
}

fn balance(out: &mut Out, report: &Insights) {
    let b = &report.balance;
    out.heading("Who holds what");
    out.wrapped(
        "",
        0,
        &format!(
            "Shares of the weighted load of {} active item{}: a picture of the split, not a score.",
            b.active_items,
            if b.active_items == 1 { "" } else { "s" }
        ),
        Some(DIM),
    );
    if b.overall.no_load && b.invisible_stages.no_load {
        out.line("  Nothing is assigned yet.");
        return;
    }
    let legend: Vec<String> = b
        .overall
        .shares
        .iter()
        .map(|s| {
            let k = slot(report, s.person).min(BAR_CHARS.len() - 1);
            let mark = out.person(k, &BAR_CHARS[k].to_string());
            format!("{mark} {}", fit(&clean(report.name_of(s.person)), 16))
        })
        .collect();
    out.line(&format!("  {}", legend.join("   ")));
    bar_row(out, report, "overall", &b.overall);
    bar_row(out, report, "invisible", &b.invisible_stages);
    out.line("  by stage");
    for s in &b.by_stage {
        bar_row(out, report, &format!(" {}", s.stage.key()), &s.shares);
    }
    if !b.by_domain.is_empty() {
        out.line("  by domain");
        for d in &b.by_domain {
            bar_row(out, report, &format!(" {}", d.domain.key()), &d.shares);
        }
    }
    let first = b.trend.first().map(|p| split_text(&p.overall));
    let direction = match b.direction {
        super::super::BalanceDirection::Steady => "steady",
        super::super::BalanceDirection::EveningOut => "evening out",
        super::super::BalanceDirection::MoreUneven => "becoming more uneven",
        super::super::BalanceDirection::Unknown => "not enough to tell",
    };
    if let Some(first) = first.filter(|f| !f.is_empty()) {
        out.wrapped(
            "  ",
            2,
            &format!(
                "Over {} weeks: {first} then, {} now, {direction}.",
                b.trend.len(),
                split_text(&b.overall)
            ),
            None,
        );
    }
    let unseen: Vec<String> = b
        .invisible_work
        .iter()
        .filter(|w| w.done > 0)
        .map(|w| {
            format!(
                "{} {} ({} not yet acknowledged)",
                clean(report.name_of(w.person)),
                w.done,
                w.unacknowledged
            )
        })
        .collect();
    if !unseen.is_empty() {
        out.wrapped(
            "  ",
            2,
            &format!(
                "Unseen work in the last {} weeks: {}.",
                report.params.recent_weeks,
                unseen.join(", ")
            ),
            None,
        );
    }
}

fn connection(out: &mut Out, report: &Insights) {
    let weeks = report.weeks.len().min(MAX_SPARK_WEEKS);
    out.heading("Moments and thank-yous");
    let rows = [
        ("moments", &report.connection.moments, "started"),
        ("thank-yous", &report.connection.acknowledgments, "given"),
    ];
    for (label, counts, by_word) in rows {
        let skip = counts.weekly.len().saturating_sub(weeks);
        let weekly: Vec<u32> = counts.weekly.iter().skip(skip).map(|w| w.total).collect();
        out.line(&format!(
            "  {:<12}{}  {:.1} a week lately",
            label,
            count_sparkline(&weekly),
            counts.recent.per_week
        ));
        let mut text = format!("{}.", capital(rate_word(counts.trend)));
        if let Some(by) = spread_text(&counts.recent.by, by_word, report.params.balanced_max_pct) {
            text.push(' ');
            text.push_str(&by);
        }
        out.wrapped(&" ".repeat(14), 14, &text, None);
    }
}

fn capital(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_splits_only_overlong_words() {
        assert_eq!(wrap("aaa bbb ccc", 10), vec!["aaa bbb", "ccc"]);
        assert_eq!(
            wrap(&"x".repeat(25), 10),
            vec!["x".repeat(10), "x".repeat(10), "x".repeat(5)]
        );
        assert_eq!(wrap("", 10), vec![String::new()]);
    }

    #[test]
    fn fit_marks_the_cut() {
        assert_eq!(fit("Alexandria", 6), "Alexa…");
        assert_eq!(fit("Bo", 6), "Bo");
    }
}
