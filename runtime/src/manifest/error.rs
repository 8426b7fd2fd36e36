//! Manifest errors: a [`Problem`] is one located finding (file, line, column, field path); a
//! [`ManifestError`] is what loading or validating returns.

use std::fmt;
use std::path::PathBuf;

/// One problem in a manifest, located. Displays as
/// `manifests/x.yaml:12:7: spec.partitions: expected an integer`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The manifest file as the user named it (or as found in the directory).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted field path inside the document (`spec.outputs[1]`); empty for the whole document.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        } else {
            write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.path, self.message)
        }
    }
}

/// Loading or validating manifests failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// No manifest files were found.
    #[error("{path}: no .yaml or .yml files")]
    Empty {
        /// The directory named.
        path: PathBuf,
    },
    /// Every problem found, sorted by file and position (nothing was changed).
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
}

fn render(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    format!("{} problem(s); nothing was changed:\n{}", problems.len(), lines.join("\n"))
}
