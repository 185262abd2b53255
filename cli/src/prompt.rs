//! Interactive questions on a terminal: a line of text, a number, and a small picker that
//! takes the arrow keys (or j/k) and number keys.
//!
//! Prompts go to stderr so that stdout stays clean for `--json` and pipes. This module
//! owns the terminal's raw mode and always restores it, even on Ctrl-C or an error. It
//! must not know what the questions are about; the commands bring the words.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use rustix::termios::{self, OptionalActions, Termios};

use crate::error::CliError;
use crate::out::Style;

/// Whether we may ask questions: both the keyboard and the screen are a terminal.
pub(crate) fn interactive() -> bool {
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

/// Puts the terminal in raw mode while alive, and restores it when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> io::Result<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// A key the picker understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Up,
    Down,
    Digit(u8),
    Space,
    Enter,
    Cancel,
    Other,
}

fn read_key(input: &mut impl Read) -> io::Result<Key> {
    let mut byte = [0u8; 1];
    input.read_exact(&mut byte)?;
    Ok(match byte[0] {
        b'\r' | b'\n' => Key::Enter,
        b' ' => Key::Space,
        b'k' => Key::Up,
        b'j' => Key::Down,
        b'q' | 3 | 4 => Key::Cancel,
        d @ b'0'..=b'9' => Key::Digit(d - b'0'),
        0x1b => {
            input.read_exact(&mut byte)?;
            if byte[0] != b'[' && byte[0] != b'O' {
                return Ok(Key::Cancel);
            }
            input.read_exact(&mut byte)?;
            match byte[0] {
                b'A' => Key::Up,
                b'B' => Key::Down,
                _ => Key::Other,
            }
        }
        _ => Key::Other,
    })
}

/// What the picker's state machine does after a key: pure, so it is testable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Picker {
    len: usize,
    cursor: usize,
    /// `Some` for a multi-select.
    chosen: Option<Vec<bool>>,
    /// Whether number keys pick 0-based (ratings 0–4) or 1-based (lists).
    zero_based: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Redraw,
    Done,
    Cancelled,
}

impl Picker {
    fn on_key(&mut self, key: Key) -> Step {
        match key {
            Key::Up => self.cursor = (self.cursor + self.len - 1) % self.len,
            Key::Down => self.cursor = (self.cursor + 1) % self.len,
            Key::Digit(d) => {
                let index = if self.zero_based {
                    Some(usize::from(d))
                } else {
                    usize::from(d).checked_sub(1)
                };
                if let Some(i) = index.filter(|i| *i < self.len) {
                    self.cursor = i;
                    match &mut self.chosen {
                        Some(chosen) => chosen[i] = !chosen[i],
                        // A number picks outright: one key per rating.
                        None => return Step::Done,
                    }
                }
            }
            Key::Space => {
                if let Some(chosen) = &mut self.chosen {
                    chosen[self.cursor] = !chosen[self.cursor];
                }
            }
            Key::Enter => return Step::Done,
            Key::Cancel => return Step::Cancelled,
            Key::Other => {}
        }
        Step::Redraw
    }
}

fn draw(err: &mut impl Write, picker: &Picker, options: &[String], style: Style) -> io::Result<()> {
    for (i, option) in options.iter().enumerate() {
        let pointer = if i == picker.cursor { "›" } else { " " };
        let mark = match &picker.chosen {
            Some(chosen) if chosen[i] => "[x] ",
            Some(_) => "[ ] ",
            None => "",
        };
        let number = if picker.zero_based { i } else { i + 1 };
        let text = format!("{pointer} {mark}{number}  {option}");
        let text = if i == picker.cursor {
            style.bold(&text)
        } else {
            text
        };
        write!(err, "\r\x1b[2K  {text}\r\n")?;
    }
    err.flush()
}

fn run_picker(
    question: &str,
    help: &str,
    options: &[String],
    mut picker: Picker,
) -> anyhow::Result<Picker> {
    let style = Style::stderr();
    let raw = match RawMode::enter() {
        Ok(raw) => raw,
        Err(_) => return pick_by_number(question, options, picker),
    };
    let mut err = io::stderr().lock();
    write!(err, "{} {}\r\n", style.bold(question), style.dim(help))?;
    draw(&mut err, &picker, options, style)?;
    let mut input = io::stdin().lock();
    let outcome = loop {
        let step = picker.on_key(read_key(&mut input)?);
        write!(err, "\x1b[{}A", options.len())?;
        draw(&mut err, &picker, options, style)?;
        match step {
            Step::Redraw => {}
            Step::Done => break Ok(()),
            Step::Cancelled => break Err(CliError::Cancelled),
        }
    };
    // Fold the list away and leave one line with the answer.
    write!(err, "\x1b[{}A\r\x1b[J", options.len() + 1)?;
    let answer = match &picker.chosen {
        _ if outcome.is_err() => "stopped".to_string(),
        Some(chosen) => {
            let names: Vec<&str> = options
                .iter()
                .zip(chosen)
                .filter(|(_, c)| **c)
                .map(|(o, _)| o.as_str())
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        }
        None => options[picker.cursor].clone(),
    };
    write!(err, "{} {}\r\n", style.bold(question), style.good(&answer))?;
    err.flush()?;
    drop(raw);
    outcome?;
    Ok(picker)
}

/// The fallback when the terminal cannot go raw: numbered options and a typed answer.
fn pick_by_number(
    question: &str,
    options: &[String],
    mut picker: Picker,
) -> anyhow::Result<Picker> {
    let base = usize::from(!picker.zero_based);
    let mut err = io::stderr().lock();
    writeln!(err, "{question}")?;
    for (i, option) in options.iter().enumerate() {
        writeln!(err, "  {}  {option}", i + base)?;
    }
    drop(err);
    loop {
        let what = if picker.chosen.is_some() {
            "numbers, separated by spaces (Enter for none)"
        } else {
            "a number"
        };
        let Some(line) = read_line(&format!("Type {what}: "))? else {
            if picker.chosen.is_some() {
                return Ok(picker);
            }
            continue;
        };
        let numbers: Option<Vec<usize>> = line
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(base))
                    .filter(|i| *i < options.len())
            })
            .collect();
        match (numbers, &mut picker.chosen) {
            (Some(ns), Some(chosen)) => {
                for n in ns {
                    chosen[n] = true;
                }
                return Ok(picker);
            }
            (Some(ns), None) if ns.len() == 1 => {
                picker.cursor = ns[0];
                return Ok(picker);
            }
            _ => crate::out::note("That is not one of the numbers shown; please try again."),
        }
    }
}

/// Asks for one of `options`; number keys count from 0 when `zero_based` (for ratings).
pub(crate) fn pick_one(
    question: &str,
    options: &[String],
    default: usize,
    zero_based: bool,
) -> anyhow::Result<usize> {
    let help = if zero_based {
        "(↑/↓ or 0-9, Enter)"
    } else {
        "(↑/↓ or 1-9, Enter)"
    };
    let picker = Picker {
        len: options.len(),
        cursor: default.min(options.len().saturating_sub(1)),
        chosen: None,
        zero_based,
    };
    Ok(run_picker(question, help, options, picker)?.cursor)
}

/// Asks for any number of `options`; returns the chosen indices.
pub(crate) fn pick_many(question: &str, options: &[String]) -> anyhow::Result<Vec<usize>> {
    let picker = Picker {
        len: options.len(),
        cursor: 0,
        chosen: Some(vec![false; options.len()]),
        zero_based: false,
    };
    let picker = run_picker(
        question,
        "(↑/↓, Space to mark, Enter when done)",
        options,
        picker,
    )?;
    Ok(picker
        .chosen
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, c)| **c)
        .map(|(i, _)| i)
        .collect())
}

/// Asks for a line of text; `None` when the answer is empty.
pub(crate) fn read_line(question: &str) -> anyhow::Result<Option<String>> {
    let style = Style::stderr();
    {
        let mut err = io::stderr().lock();
        write!(err, "{}", style.bold(question))?;
        err.flush()?;
    }
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(CliError::Cancelled.into());
    }
    let line = line.trim();
    Ok((!line.is_empty()).then(|| line.to_string()))
}

/// Asks for a whole number in `min..=max`, asking again until it is one.
pub(crate) fn read_number(question: &str, min: u32, max: u32) -> anyhow::Result<u32> {
    loop {
        if let Some(text) = read_line(question)? {
            match text.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => return Ok(n),
                _ => crate::out::note(&format!("Please type a whole number from {min} to {max}.")),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(len: usize, zero_based: bool) -> Picker {
        Picker {
            len,
            cursor: 0,
            chosen: None,
            zero_based,
        }
    }

    #[test]
    fn arrows_wrap_around() {
        let mut p = one(5, true);
        assert_eq!(p.on_key(Key::Up), Step::Redraw);
        assert_eq!(p.cursor, 4);
        p.on_key(Key::Down);
        assert_eq!(p.cursor, 0);
    }

    #[test]
    fn a_number_picks_a_rating_at_once() {
        let mut p = one(5, true);
        assert_eq!(p.on_key(Key::Digit(3)), Step::Done);
        assert_eq!(p.cursor, 3);
        // Out of range numbers are ignored.
        let mut p = one(5, true);
        assert_eq!(p.on_key(Key::Digit(7)), Step::Redraw);
        assert_eq!(p.cursor, 0);
        // Lists count from one.
        let mut p = one(3, false);
        assert_eq!(p.on_key(Key::Digit(0)), Step::Redraw);
        assert_eq!(p.on_key(Key::Digit(2)), Step::Done);
        assert_eq!(p.cursor, 1);
    }

    #[test]
    fn multi_select_toggles_and_confirms() {
        let mut p = Picker {
            len: 3,
            cursor: 0,
            chosen: Some(vec![false; 3]),
            zero_based: false,
        };
        p.on_key(Key::Space);
        p.on_key(Key::Down);
        p.on_key(Key::Down);
        p.on_key(Key::Space);
        p.on_key(Key::Digit(1));
        assert_eq!(p.on_key(Key::Enter), Step::Done);
        assert_eq!(p.chosen, Some(vec![false, false, true]));
    }

    #[test]
    fn keys_decode_arrows_and_cancel() {
        let mut input: &[u8] = b"\x1b[A\x1b[Bj3 \rq\x03";
        let keys: Vec<Key> = (0..8).map(|_| read_key(&mut input).unwrap()).collect();
        assert_eq!(
            keys,
            vec![
                Key::Up,
                Key::Down,
                Key::Down,
                Key::Digit(3),
                Key::Space,
                Key::Enter,
                Key::Cancel,
                Key::Cancel
            ]
        );
        let mut p = one(2, true);
        assert_eq!(p.on_key(Key::Cancel), Step::Cancelled);
    }
}
