//! Writing to the terminal: stdout without panics, and color only where it belongs.
//!
//! Everything the CLI prints on stdout goes through [`Out`], which returns IO errors
//! instead of panicking like `println!`, so a closed pipe (`hearth log | head`) surfaces
//! as `BrokenPipe` and `main` exits quietly. This module must not format records; the
//! renderers do that and hand over finished text.

use std::io::{self, IsTerminal, Write};

/// ANSI styles, switched off when the stream is not a terminal or `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    enabled: bool,
}

impl Style {
    /// Styles for a stream that may or may not be a terminal.
    pub(crate) fn for_stream(is_terminal: bool) -> Style {
        // https://no-color.org: any non-empty value turns color off.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|v| v == "dumb");
        Style {
            enabled: is_terminal && !no_color && !dumb,
        }
    }

    /// Styles for stdout.
    pub(crate) fn stdout() -> Style {
        Style::for_stream(io::stdout().is_terminal())
    }

    /// Styles for stderr.
    pub(crate) fn stderr() -> Style {
        Style::for_stream(io::stderr().is_terminal())
    }

    /// No styling at all, for tests.
    #[cfg(test)]
    pub(crate) const fn plain() -> Style {
        Style { enabled: false }
    }

    /// Whether styling is on, for renderers that take a color flag.
    pub(crate) fn enabled(self) -> bool {
        self.enabled
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Bold, for headings and names.
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim, for ids and secondary detail.
    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Green, for things that went well.
    pub(crate) fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Yellow, for signals worth a look. Never red: these are signals, not alarms.
    pub(crate) fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Cyan, for commands to type.
    pub(crate) fn cmd(self, text: &str) -> String {
        self.paint("36", text)
    }
}

/// The one way to write to stdout.
pub(crate) struct Out {
    inner: io::BufWriter<io::Stdout>,
}

impl Out {
    /// A buffered handle on stdout.
    pub(crate) fn new() -> Out {
        Out {
            inner: io::BufWriter::new(io::stdout()),
        }
    }

    /// Writes text as is.
    pub(crate) fn write(&mut self, text: &str) -> io::Result<()> {
        self.inner.write_all(text.as_bytes())
    }

    /// Writes text and a newline.
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        self.inner.write_all(text.as_bytes())?;
        self.inner.write_all(b"\n")
    }

    /// Writes bytes as is.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)
    }

    /// Writes a value as pretty JSON and a newline.
    pub(crate) fn json(&mut self, value: &serde_json::Value) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.inner, value).map_err(io::Error::from)?;
        self.inner.write_all(b"\n")
    }

    /// Flushes; a closed pipe shows up here at the latest.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a line to stderr, ignoring failures: there is nowhere left to report them.
pub(crate) fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_adds_no_escapes() {
        let s = Style::plain();
        assert_eq!(s.bold("x"), "x");
        assert!(!s.enabled);
    }

    #[test]
    fn enabled_style_wraps_in_ansi() {
        let s = Style { enabled: true };
        assert_eq!(s.warn("hm"), "\x1b[33mhm\x1b[0m");
    }
}
