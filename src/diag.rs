//! Diagnostics: every problem found in a config or zone file, with where it is and how to fix it.
//!
//! Loading never stops at the first problem. Each stage pushes [`Diagnostic`]s into one
//! [`Diagnostics`] collection, and the caller renders them all at once, sorted by file and line:
//!
//! ```text
//! error: zones/example.com.toml:42:13: names.www.a[2]: "10.0.0.300" is not an IP address
//!   help: write an IPv4 or IPv6 literal, e.g. "192.0.2.10" or "2001:db8::10"
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// How bad a diagnostic is: errors reject the load, warnings only inform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file cannot be served as written.
    Error,
    /// The file is served, but probably not as its author meant.
    Warning,
}

/// A source file's text, kept so byte offsets can be turned into `line:col`.
#[derive(Debug)]
pub struct Source {
    path: PathBuf,
    line_starts: Vec<usize>,
}

impl Source {
    /// Indexes `text` (the contents of `path`) for line lookups.
    pub fn new(path: &Path, text: &str) -> Arc<Self> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(Self {
            path: path.to_path_buf(),
            line_starts,
        })
    }

    /// The file this text came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line and column of a byte offset (columns count bytes, as most editors accept).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        (line, offset - self.line_starts[line - 1] + 1)
    }
}

/// One problem, located in a file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, if the problem is in one.
    pub file: Option<PathBuf>,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// Dotted key path, e.g. `names.www.a[2]`; empty when the problem is the whole file.
    pub key: String,
    /// What is wrong, quoting the offending value.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Sort key: file, then position, so output reads top to bottom.
    fn sort_key(&self) -> (Option<&Path>, (usize, usize)) {
        (self.file.as_deref(), self.position.unwrap_or((0, 0)))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: ")?;
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
            if let Some((line, col)) = self.position {
                write!(f, "{line}:{col}:")?;
            }
            f.write_str(" ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// All diagnostics of one load.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Adds an error that concerns no particular file (e.g. a missing directory).
    pub fn error_global(&mut self, message: impl Into<String>, help: Option<String>) {
        self.push(Diagnostic {
            severity: Severity::Error,
            file: None,
            position: None,
            key: String::new(),
            message: message.into(),
            help,
        });
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// True when at least one error was found.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// The diagnostics, sorted by file and position.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.items.iter().collect();
        v.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        v
    }

    /// All diagnostics, one per paragraph, sorted.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in self.sorted() {
            out.push_str(&d.to_string());
            out.push('\n');
        }
        out
    }

    /// One-line count, e.g. `2 errors, 1 warning`.
    pub fn summary(&self) -> String {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        format!(
            "{}, {}",
            plural(self.error_count(), "error"),
            plural(self.warning_count(), "warning")
        )
    }
}

/// Collects diagnostics for one file: knows its path and text, so callers only give a span.
pub struct FileDiags<'a> {
    source: Arc<Source>,
    out: &'a mut Diagnostics,
}

impl<'a> FileDiags<'a> {
    /// Diagnostics about `source` go into `out`.
    pub fn new(source: Arc<Source>, out: &'a mut Diagnostics) -> Self {
        Self { source, out }
    }

    /// Errors recorded so far in the whole collection.
    pub fn error_count(&self) -> usize {
        self.out.error_count()
    }

    /// Records an error at `span` (byte range into the file) for key path `key`.
    pub fn error(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.add(Severity::Error, span, key, message, help);
    }

    /// Records a warning at `span`.
    pub fn warning(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.add(Severity::Warning, span, key, message, help);
    }

    fn add(
        &mut self,
        severity: Severity,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.out.push(Diagnostic {
            severity,
            file: Some(self.source.path().to_path_buf()),
            position: span.map(|s| self.source.line_col(s.start)),
            key: key.into(),
            message: message.into(),
            help,
        });
    }
}

/// Turns a toml deserialization error into a diagnostic under `key`.
pub fn toml_error(d: &mut FileDiags<'_>, key: &str, e: &toml::de::Error, fallback: Range<usize>) {
    let msg = e.message().trim_end_matches('\n');
    // serde reports a nested table's unknown key against the table deserialized as a whole;
    // the expected-field list tells which nested table it really was.
    let nested = if !key.starts_with("names.") {
        ""
    } else if msg.contains("`max_datacenters`") {
        ".gslb"
    } else if msg.contains("`subdivision`") {
        ".gslb.map"
    } else {
        ""
    };
    let key = format!("{key}{nested}");
    let key = key.trim_start_matches('.');
    let (message, help) = match msg.strip_prefix("unknown field `") {
        Some(rest) => {
            let field = rest.split('`').next().unwrap_or_default();
            let help = unknown_key_help(field, &expected_fields(msg), "allowed keys");
            (format!("unknown key `{field}`"), Some(help))
        }
        None => (msg.to_owned(), None),
    };
    d.error(Some(e.span().unwrap_or(fallback)), key, message, help);
}

/// The fields serde lists in an "unknown field `x`, expected `a` or `b`" message: the keys
/// the table would have accepted, which is what a "did you mean" hint chooses from.
pub fn expected_fields(message: &str) -> Vec<&str> {
    message
        .split_once(", expected ")
        .map(|(_, e)| {
            e.split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect()
        })
        .unwrap_or_default()
}

/// The help line for an unknown key: the nearest of `known`, or, when none is near, all of
/// them after `listed_as` (`"allowed keys"`), so the reader sees what the table takes.
pub fn unknown_key_help(key: &str, known: &[&str], listed_as: &str) -> String {
    match did_you_mean(key, known) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("{listed_as}: {}", known.join(", ")),
    }
}

/// Walks the top level of a file: hands each key and value to `section`, which returns
/// whether it knows the key, and reports every key it does not know as unknown, with
/// [`unknown_key_help`] over `known`.
///
/// The sections are deserialized one by one rather than as one struct, so that a bad
/// section does not hide the problems of the others, and every unknown key is reported,
/// not only the first.
pub fn sections<'t, 'i>(
    d: &mut FileDiags<'_>,
    table: &'t DeTable<'i>,
    known: &[&str],
    listed_as: &str,
    mut section: impl FnMut(&mut FileDiags<'_>, &str, &'t Spanned<DeValue<'i>>) -> bool,
) {
    for (k, v) in table.iter() {
        let key = k.get_ref().as_ref();
        if !section(d, key, v) {
            d.error(
                Some(k.span()),
                key_segment(key),
                format!("unknown key `{key}`"),
                Some(unknown_key_help(key, known, listed_as)),
            );
        }
    }
}

/// Deserializes one TOML value on its own, so its errors are reported under `key` and do
/// not stop the rest of the file from being checked.
pub fn deserialize<'i, T: serde::Deserialize<'i>>(
    d: &mut FileDiags<'_>,
    key: &str,
    value: &Spanned<DeValue<'i>>,
) -> Option<T> {
    match T::deserialize(toml::de::ValueDeserializer::from(value.clone())) {
        Ok(v) => Some(v),
        Err(e) => {
            toml_error(d, key, &e, value.span());
            None
        }
    }
}

/// Quotes a TOML key for a key path: bare when it can be, quoted otherwise.
pub fn key_segment(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The closest of `candidates` to `word` by edit distance, for "did you mean" hints.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = Source::new(Path::new("z.toml"), "ab\ncd\n\nef");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(1), (1, 2));
        assert_eq!(src.line_col(3), (2, 1));
        assert_eq!(src.line_col(7), (4, 1));
    }

    #[test]
    fn render_sorts_by_file_then_line() {
        let mut all = Diagnostics::new();
        let src = Source::new(Path::new("b.toml"), "x\ny\nz\n");
        let mut d = FileDiags::new(src, &mut all);
        d.error(Some(4..5), "k2", "late", None);
        d.error(Some(0..1), "k1", "early", Some("fix it".into()));
        let src_a = Source::new(Path::new("a.toml"), "q\n");
        FileDiags::new(src_a, &mut all).warning(Some(0..1), "w", "warned", None);
        assert_eq!(
            all.render(),
            "warning: a.toml:1:1: w: warned\n\
             error: b.toml:1:1: k1: early\n  help: fix it\n\
             error: b.toml:3:1: k2: late\n"
        );
        assert_eq!(all.summary(), "2 errors, 1 warning");
    }

    #[test]
    fn suggestions_pick_the_nearest_key() {
        assert_eq!(did_you_mean("adress", &["address", "ttl"]), Some("address"));
        assert_eq!(did_you_mean("zzzzzz", &["address", "ttl"]), None);
    }
}
