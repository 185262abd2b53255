//! The report as one self-contained HTML file: inline CSS and SVG, no script, and no
//! reference to anything outside the file, so it can be opened offline, printed, or
//! handed to a counsellor without it ever calling home.
//!
//! Every chart is an `<svg data-chart="…">`; every data point is one element inside it
//! (a `<circle>` on line charts, a `<rect>` on bar charts), which keeps the file easy to
//! check.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::super::{Insights, PersonTrend, Shares, WeekPoint, WeeklyCounts};
use super::{
    band_text, basis_text, battery_now, clean, data_text, rate_word, signal_subject, signs_now,
    slot, span_text, split_text, spread_text,
};

const WIDTH: f64 = 640.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

const CSS: &str = r#"
:root { --ink: #222; --soft: #666; --line: #ddd; --bg: #fcfbf8; --card: #fff;
  --p0: #1f7a8c; --p1: #c0651a; --p2: #7b5ea7; --p3: #4c8c4a; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 760px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 0 0 8px; }
h3 { font-size: 1rem; margin: 16px 0 4px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 20px; margin: 16px 0; }
.meta, .explain, small, figcaption { color: var(--soft); }
.note { font-style: italic; }
ul.signals { list-style: none; padding: 0; margin: 0; }
ul.signals li { border-left: 4px solid var(--line); padding: 4px 12px; margin: 8px 0; }
ul.signals li.person-0 { border-color: var(--p0); }
ul.signals li.person-1 { border-color: var(--p1); }
ol.steps li { margin: 6px 0; }
figure { margin: 12px 0; }
svg { width: 100%; height: auto; display: block; }
svg text { font-size: 11px; fill: var(--soft); }
svg .grid line { stroke: var(--line); stroke-width: 1; }
svg polyline { fill: none; stroke-width: 2.5; }
svg line.base { stroke-width: 1.5; stroke-dasharray: 2 4; }
svg .p0 { stroke: var(--p0); fill: var(--p0); }
svg .p1 { stroke: var(--p1); fill: var(--p1); }
svg .p2 { stroke: var(--p2); fill: var(--p2); }
svg .p3 { stroke: var(--p3); fill: var(--p3); }
svg polyline.p0, svg polyline.p1, svg polyline.p2, svg polyline.p3 { fill: none; }
svg polyline.p1 { stroke-dasharray: 7 4; }
svg polyline.p2 { stroke-dasharray: 2 3; }
svg rect.p1 { fill-opacity: 0.75; }
svg rect.empty { fill: var(--line); }
ul.legend { list-style: none; padding: 0; margin: 4px 0; display: flex; gap: 16px; flex-wrap: wrap; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; margin-right: 6px;
  vertical-align: -2px; }
.swatch.p0 { background: var(--p0); } .swatch.p1 { background: var(--p1); }
.swatch.p2 { background: var(--p2); } .swatch.p3 { background: var(--p3); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 0.95rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { color: var(--soft); font-size: 0.9rem; margin-top: 24px; }
@page { size: A4; margin: 16mm; }
@media print {
  body { background: #fff; font-size: 11pt; }
  main { max-width: none; padding: 0; }
  section { border: none; border-top: 1px solid #999; border-radius: 0; padding: 8px 0;
    break-inside: avoid; page-break-inside: avoid; }
  figure { break-inside: avoid; }
  svg text { fill: #333; }
}
"#;

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn name(report: &Insights, person: super::super::PersonId) -> String {
    esc(&clean(report.name_of(person)))
}

/// The CSS class of a person's colour and line style.
fn class(report: &Insights, person: super::super::PersonId) -> String {
    format!("p{}", slot(report, person).min(3))
}

fn short_date(date: NaiveDate) -> String {
    date.format("%-d %b").to_string()
}

/// Renders the report as one self-contained HTML file.
pub fn render_html(report: &Insights) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Hearth report · {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&span_text(report))
    );
    let _ = write!(
        h,
        "<header>\n<h1>How we are doing</h1>\n<p class=\"meta\">A Hearth report for the {}.</p>\n\
         <p class=\"note\">{}</p>\n</header>\n",
        esc(&span_text(report)),
        esc(&report.note)
    );
    legend(&mut h, report);
    signals(&mut h, report);
    steps(&mut h, report);
    trends(&mut h, report);
    balance(&mut h, report);
    connection(&mut h, report);
    reflections(&mut h, report);
    let _ = write!(
        h,
        "<footer>\n<p>{}</p>\n<p>Notes and asks are never part of a report. Made on your own device; this file makes no connections.</p>\n</footer>\n</main>\n</body>\n</html>\n",
        esc(&data_text(report))
    );
    h
}

fn legend(h: &mut String, report: &Insights) {
    if report.people.is_empty() {
        return;
    }
    h.push_str("<ul class=\"legend\">");
    for p in &report.people {
        let _ = write!(
            h,
            "<li><span class=\"swatch {}\"></span>{}</li>",
            class(report, p.id),
            name(report, p.id)
        );
    }
    h.push_str("</ul>\n");
}

fn signals(h: &mut String, report: &Insights) {
    h.push_str("<section id=\"signals\">\n<h2>What stands out</h2>\n");
    if report.signals.is_empty() {
        h.push_str("<p>Nothing stands out right now.</p>\n");
    } else {
        h.push_str("<ul class=\"signals\">\n");
        for s in &report.signals {
            let who = signal_subject(report, s)
                .map(|n| format!(" · {}", esc(&n)))
                .unwrap_or_default();
            let person_class = s
                .person
                .map(|p| format!(" person-{}", slot(report, p).min(3)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<li class=\"signal{person_class}\" data-key=\"{}\"><strong>{}</strong>{who}<br>{}<br><small>{}</small></li>",
                s.key.key(),
                esc(s.key.title()),
                esc(&s.why),
                esc(&basis_text(&s.rests_on))
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

fn steps(h: &mut String, report: &Insights) {
    h.push_str("<section id=\"steps\">\n<h2>Next steps</h2>\n<ol class=\"steps\">\n");
    for s in &report.suggestions {
        let _ = writeln!(
            h,
            "<li data-step=\"{}\">{}</li>",
            s.step.key(),
            esc(&s.text)
        );
    }
    h.push_str("</ol>\n");
    if !report.recovery.is_empty() {
        h.push_str("<p class=\"explain\">The order of recovery, and where you are on it:</p>\n<ol class=\"recovery\">\n");
        for r in &report.recovery {
            let state = match r.state {
                super::super::StageState::Now => "start here",
                super::super::StageState::Also => "called for too",
                super::super::StageState::Later => "later",
                super::super::StageState::Steady => "fine for now",
            };
            let _ = writeln!(
                h,
                "<li data-step=\"{}\" data-state=\"{}\">{} <small>({state})</small></li>",
                r.step.key(),
                r.state.key(),
                esc(r.step.title())
            );
        }
        h.push_str("</ol>\n");
    }
    h.push_str("</section>\n");
}

fn x_at(i: usize, n: usize) -> f64 {
    let width = WIDTH - LEFT - RIGHT;
    if n <= 1 {
        LEFT + width / 2.0
    } else {
        LEFT + width * i as f64 / (n - 1) as f64
    }
}

/// Week-start labels under the x axis: first, middle and last.
fn x_labels(h: &mut String, report: &Insights, height: f64) {
    let n = report.weeks.len();
    let mut picks = vec![0, n / 2, n.saturating_sub(1)];
    picks.dedup();
    for i in picks {
        if let Some(w) = report.weeks.get(i) {
            let anchor = if i == 0 && n > 1 {
                "start"
            } else if i + 1 == n && n > 1 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                x_at(i, n),
                height - 8.0,
                esc(&short_date(w.start))
            );
        }
    }
}

struct LineSpec<'a> {
    id: &'a str,
    title: &'a str,
    lo: f64,
    hi: f64,
    ticks: &'a [f64],
    value: fn(&WeekPoint) -> Option<f64>,
    usual: fn(&PersonTrend) -> Option<f64>,
    unit: &'a str,
}

/// One person's chart. Each person gets their own, drawn against their own usual
/// level: two lines on one axis would invite a comparison the numbers cannot bear.
fn line_chart(h: &mut String, report: &Insights, spec: &LineSpec<'_>, t: &PersonTrend) {
    let height = 180.0;
    let plot = height - TOP - BOTTOM;
    let y = |v: f64| TOP + plot * (1.0 - ((v - spec.lo) / (spec.hi - spec.lo)).clamp(0.0, 1.0));
    let n = report.weeks.len();
    let _ = write!(
        h,
        "<figure>\n<figcaption>{}</figcaption>\n<svg data-chart=\"{}-{}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">\n<g class=\"grid\">",
        esc(spec.title),
        spec.id,
        super::slot(report, t.person).saturating_add(1),
        esc(spec.title)
    );
    for t in spec.ticks {
        let _ = write!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{t}</text>",
            WIDTH - RIGHT,
            y(*t),
            y(*t),
            LEFT - 6.0,
            y(*t) + 4.0
        );
    }
    x_labels(h, report, height);
    h.push_str("</g>\n");
    let radius = if n > 60 { 1.5 } else { 3.5 };
    {
        let cls = class(report, t.person);
        let who = name(report, t.person);
        let _ = write!(h, "<g class=\"person\" data-person=\"{}\">", t.person);
        if let Some(u) = (spec.usual)(t) {
            let _ = write!(
                h,
                "<line class=\"base {cls}\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"><title>{who}: usual {u}{}</title></line>",
                WIDTH - RIGHT,
                y(u),
                y(u),
                spec.unit
            );
        }
        // Consecutive weeks with data form one line; a gap breaks it rather than
        // drawing a line through weeks nobody logged.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut dots = String::new();
        let flush = |h: &mut String, run: &mut Vec<(f64, f64)>| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    h,
                    "<polyline class=\"{cls}\" points=\"{}\"/>",
                    pts.join(" ")
                );
            }
            run.clear();
        };
        for (i, (week, span)) in t.weekly.iter().zip(&report.weeks).enumerate() {
            match (spec.value)(week) {
                Some(v) => {
                    let (px, py) = (x_at(i, n), y(v));
                    run.push((px, py));
                    let _ = write!(
                        dots,
                        "<circle class=\"{cls}\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"{radius}\"><title>{who}, week of {}: {v}{}</title></circle>",
                        esc(&short_date(span.start)),
                        spec.unit
                    );
                }
                None => flush(h, &mut run),
            }
        }
        flush(h, &mut run);
        h.push_str(&dots);
        h.push_str("</g>\n");
    }
    h.push_str("</svg>\n</figure>\n");
}

fn trends(h: &mut String, report: &Insights) {
    h.push_str("<section id=\"trends\">\n<h2>Battery and signs over time</h2>\n");
    h.push_str("<p class=\"explain\">One point per week. Each of you has your own charts, measured against your own usual level (the dotted line): they show how each of you is doing, not who is doing better. A break in a line is a week with no check-ins.</p>\n");
    for t in &report.trends {
        let _ = write!(
            h,
            "<h3>{}</h3>\n<p>Last 7 days: battery {}; signs {}.</p>\n",
            name(report, t.person),
            esc(&battery_now(t)),
            esc(&signs_now(t))
        );
        line_chart(
            h,
            report,
            &LineSpec {
                id: "battery",
                title: "Battery: energy left, 0 to 100, against their own usual level",
                lo: 0.0,
                hi: 100.0,
                ticks: &[0.0, 25.0, 50.0, 75.0, 100.0],
                value: |w| w.battery,
                usual: |t| t.baseline.battery,
                unit: "",
            },
            t,
        );
        line_chart(
            h,
            report,
            &LineSpec {
                id: "signs",
                title: "Burnout signs: average rating, 0 (not at all) to 4 (very much), against their own usual level",
                lo: 0.0,
                hi: 4.0,
                ticks: &[0.0, 1.0, 2.0, 3.0, 4.0],
                value: |w| w.signs,
                usual: |t| t.baseline.signs,
                unit: " of 4",
            },
            t,
        );
        h.push_str("<table>\n<tr><th>Window</th><th>Check-in days</th><th>Battery</th><th>vs usual</th><th>Signs</th><th>vs usual</th></tr>\n");
        for w in &t.windows {
            let num = |v: Option<f64>, digits: usize| {
                v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
            };
            let signed = |v: Option<f64>, digits: usize| {
                v.map_or_else(|| "–".to_string(), |v| format!("{v:+.digits$}"))
            };
            let _ = writeln!(
                h,
                "<tr><td>{} days</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                w.days,
                w.checkin_days,
                num(w.battery, 0),
                signed(w.battery_vs_baseline, 0),
                num(w.signs, 1),
                signed(w.signs_vs_baseline, 1)
            );
        }
        h.push_str("</table>\n");
        let usual = match t.baseline.source {
            super::super::BaselineSource::Median => format!(
                "Usual level: the middle value of {} check-in days from {} to {}.",
                t.baseline.days,
                short_date(t.baseline.from),
                short_date(t.baseline.to)
            ),
            super::super::BaselineSource::Ewma => {
                "Usual level: a weighted average of earlier check-ins, as the weeks just before were sparse.".to_string()
            }
            super::super::BaselineSource::None => {
                "Usual level: not known yet; it needs a few more weeks of check-ins.".to_string()
            }
        };
        let _ = writeln!(h, "<p class=\"explain\">{}</p>", esc(&usual));
    }
    h.push_str("</section>\n");
}

/// Horizontal stacked bars, one row per split.
fn share_bars(
    h: &mut String,
    report: &Insights,
    id: &str,
    title: &str,
    rows: &[(String, &Shares)],
) {
    let label_w = 120.0;
    let bar_w = 380.0;
    let row_h = 26.0;
    let height = row_h * rows.len().max(1) as f64 + 8.0;
    let _ = write!(
        h,
        "<figure>\n<figcaption>{}</figcaption>\n<svg data-chart=\"{id}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">\n",
        esc(title),
        esc(title)
    );
    for (r, (label, shares)) in rows.iter().enumerate() {
        let y = 4.0 + row_h * r as f64;
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{:.1}\">{}</text>",
            y + 15.0,
            esc(label)
        );
        if shares.no_load {
            let _ = write!(
                h,
                "<rect class=\"empty\" x=\"{label_w}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"18\" rx=\"3\"/>"
            );
        } else {
            let mut x = label_w;
            for s in &shares.shares {
                if s.load == 0 {
                    continue;
                }
                let w = bar_w * f64::from(s.load) / f64::from(shares.load.max(1));
                let _ = write!(
                    h,
                    "<rect class=\"{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\"><title>{}</title></rect>",
                    class(report, s.person),
                    name(report, s.person),
                );
                x += w;
            }
        }
        let text = if shares.no_load {
            band_text(shares).to_string()
        } else {
            format!("{} · {}", split_text(shares), band_text(shares))
        };
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w + bar_w + 10.0,
            y + 15.0,
            esc(&text)
        );
    }
    h.push_str("</svg>\n</figure>\n");
}

fn balance(h: &mut String, report: &Insights) {
    let b = &report.balance;
    let _ = write!(
        h,
        "<section id=\"balance\">\n<h2>Who holds what</h2>\n<p class=\"explain\">Each person's share of the weighted load of {} active ledger items: every stage someone holds counts the item's weight. Balanced is up to {}/{}, leaning up to {}/{}, heavy beyond. This is a picture of the split, not a score.</p>\n",
        b.active_items,
        report.params.balanced_max_pct,
        100u32.saturating_sub(report.params.balanced_max_pct),
        report.params.leaning_max_pct,
        100u32.saturating_sub(report.params.leaning_max_pct)
    );
    share_bars(
        h,
        report,
        "balance-overall",
        "Overall, and the invisible stages (noticing and following up)",
        &[
            ("overall".to_string(), &b.overall),
            ("invisible stages".to_string(), &b.invisible_stages),
        ],
    );
    let stages: Vec<(String, &Shares)> = b
        .by_stage
        .iter()
        .map(|s| (s.stage.key().to_string(), &s.shares))
        .collect();
    share_bars(h, report, "balance-stage", "By stage", &stages);
    let domains: Vec<(String, &Shares)> = b
        .by_domain
        .iter()
        .map(|d| (format!("{} ({})", d.domain.key(), d.items), &d.shares))
        .collect();
    if !domains.is_empty() {
        share_bars(
            h,
            report,
            "balance-domain",
            "By domain (active items)",
            &domains,
        );
    }
    let trend: Vec<(String, &Shares)> = b
        .trend
        .iter()
        .map(|p| (format!("to {}", short_date(p.end)), &p.overall))
        .collect();
    share_bars(
        h,
        report,
        "balance-trend",
        "The overall split at the end of each recent week",
        &trend,
    );
    let direction = match b.direction {
        super::super::BalanceDirection::Steady => "steady",
        super::super::BalanceDirection::EveningOut => "evening out",
        super::super::BalanceDirection::MoreUneven => "becoming more uneven",
        super::super::BalanceDirection::Unknown => "not enough to tell yet",
    };
    let _ = writeln!(h, "<p>Over these weeks the split has been {direction}.</p>");
    let work: Vec<String> = b
        .invisible_work
        .iter()
        .filter(|w| w.done > 0)
        .map(|w| {
            format!(
                "{}: {} pieces, {} not yet acknowledged",
                name(report, w.person),
                w.done,
                w.unacknowledged
            )
        })
        .collect();
    if !work.is_empty() {
        let _ = writeln!(
            h,
            "<p>Unseen work in the last {} weeks: {}.</p>",
            report.params.recent_weeks,
            work.join("; ")
        );
    }
    let ho = &b.handoffs;
    let _ = writeln!(
        h,
        "<p>Handoffs proposed in the last {} weeks: {} accepted, {} declined, {} countered, {} open, {} withdrawn.</p>",
        report.params.recent_weeks, ho.accepted, ho.declined, ho.countered, ho.open, ho.withdrawn
    );
    h.push_str("</section>\n");
}

/// Stacked bars per week, one bar part per person with a count.
fn week_bars(h: &mut String, report: &Insights, id: &str, title: &str, counts: &WeeklyCounts) {
    let height = 170.0;
    let plot = height - TOP - BOTTOM;
    let n = report.weeks.len();
    let max = counts
        .weekly
        .iter()
        .map(|w| w.total)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot_w = (WIDTH - LEFT - RIGHT) / n.max(1) as f64;
    let bar_w = (slot_w * 0.7).max(1.0);
    let _ = write!(
        h,
        "<figure>\n<figcaption>{}</figcaption>\n<svg data-chart=\"{id}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">\n<g class=\"grid\">",
        esc(title),
        esc(title)
    );
    for t in [0, max] {
        let y = TOP + plot * (1.0 - f64::from(t) / f64::from(max));
        let _ = write!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{t}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, w) in report.weeks.iter().enumerate() {
        if i == 0 || i + 1 == n || i == n / 2 {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                LEFT + slot_w * (i as f64 + 0.5),
                height - 8.0,
                esc(&short_date(w.start))
            );
        }
    }
    h.push_str("</g>\n");
    for (i, (week, span)) in counts.weekly.iter().zip(&report.weeks).enumerate() {
        let x = LEFT + slot_w * i as f64 + (slot_w - bar_w) / 2.0;
        let mut base = TOP + plot;
        for c in week.by.iter().filter(|c| c.n > 0) {
            let bh = plot * f64::from(c.n) / f64::from(max);
            base -= bh;
            let _ = write!(
                h,
                "<rect class=\"bar {}\" x=\"{x:.1}\" y=\"{base:.1}\" width=\"{bar_w:.1}\" height=\"{bh:.1}\"><title>{}, week of {}: {}</title></rect>",
                class(report, c.person),
                name(report, c.person),
                esc(&short_date(span.start)),
                c.n
            );
        }
    }
    h.push_str("\n</svg>\n</figure>\n");
}

fn connection(h: &mut String, report: &Insights) {
    h.push_str("<section id=\"connection\">\n<h2>Moments and acknowledgments</h2>\n");
    let m = &report.connection.moments;
    let a = &report.connection.acknowledgments;
    week_bars(
        h,
        report,
        "moments",
        "Small moments of connection per week, by who started them",
        m,
    );
    let starters = spread_text(&m.recent.by, "started", report.params.balanced_max_pct);
    let _ = writeln!(
        h,
        "<p>{:.1} moments a week in the last {} weeks, {}.{}</p>",
        m.recent.per_week,
        m.recent.weeks,
        rate_word(m.trend),
        starters
            .map(|s| format!(" {}", esc(&s)))
            .unwrap_or_default()
    );
    week_bars(
        h,
        report,
        "acks",
        "Acknowledgments per week (thanks, seen, repair), by who gave them",
        a,
    );
    let givers = spread_text(&a.recent.by, "given", report.params.balanced_max_pct);
    let _ = writeln!(
        h,
        "<p>{:.1} acknowledgments a week in the last {} weeks, {}.{}</p>",
        a.recent.per_week,
        a.recent.weeks,
        rate_word(a.trend),
        givers.map(|s| format!(" {}", esc(&s))).unwrap_or_default()
    );
    h.push_str("</section>\n");
}

fn reflections(h: &mut String, report: &Insights) {
    if report.reflections.is_empty() {
        return;
    }
    h.push_str("<section id=\"reflections\">\n<h2>Reflections</h2>\n<p class=\"explain\">The latest answers to the three reflection questions: wanting to work on this together with more energy, safety with each other, and wanting the same things. Yes to all three points to tiredness rather than growing apart. Each of you reads what your own answers point to; your partner's answer on safety is theirs and is not shown.</p>\n<table>\n<tr><th>Who</th><th>When</th><th>More energy</th><th>Safe</th><th>Aligned</th></tr>\n");
    for r in &report.reflections {
        let _ = writeln!(
            h,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            name(report, r.person),
            if r.private { " (private)" } else { "" },
            esc(&short_date(r.date)),
            r.energy.label(),
            // Another person's answer on feeling safe is theirs; the report never has it.
            r.safe.map_or("theirs", |a| a.label()),
            r.aligned.label()
        );
    }
    h.push_str("</table>\n</section>\n");
}
