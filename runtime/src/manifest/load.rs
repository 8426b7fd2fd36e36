//! Files and directories → documents: directory walking, multi-document splitting, YAML parsing
//! (serde_norway), decoding. Every problem in every file is collected before returning.

use std::path::{Path, PathBuf};

use super::decode::{self, Ctx};
use super::error::{ManifestError, Problem};
use super::locate::{At, FieldPath, Locator, Pos};
use super::model::{Document, Kind, Origin};

/// Manifest files read from one directory, at most (a bound on `-f /`).
pub const DIR_FILES_MAX: usize = 1000;

/// A decoded document and the positions of its fields (for cross-document messages).
#[derive(Debug, Clone)]
pub struct Located {
    /// The document.
    pub doc: Document,
    /// Its positions.
    pub loc: Locator,
}

/// The manifest files named: files as given, directories' `*.yaml` / `*.yml` (recursively,
/// sorted by path so apply order is stable).
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ManifestError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| ManifestError::Io { path: path.clone(), source })?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        walk(path, &mut found)?;
        if found.is_empty() {
            return Err(ManifestError::Empty { path: path.clone() });
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let io = |source| ManifestError::Io { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            if found.len() >= DIR_FILES_MAX {
                return Err(ManifestError::Io {
                    path: dir.to_path_buf(),
                    source: std::io::Error::other(format!("more than {DIR_FILES_MAX} manifest files")),
                });
            }
            found.push(path);
        }
    }
    Ok(())
}

/// A document's kind and name, and where the name is written.
#[derive(Debug, Clone)]
pub struct Header {
    /// `kind`.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// The file as shown in messages.
    pub file: String,
    /// Where `metadata.name`'s value is.
    pub at: Pos,
}

/// Everything read from a set of manifests, problems included.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The documents that decoded.
    pub docs: Vec<Located>,
    /// Kind and name of every document that has them, decoded or not: duplicates are found
    /// among all, and a reference to a document with a problem elsewhere is not reported as a
    /// second, misleading one.
    pub headers: Vec<Header>,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

/// Loads and decodes every document of `paths`, collecting problems. Only I/O fails.
pub fn load_all(paths: &[PathBuf]) -> Result<Loaded, ManifestError> {
    let mut loaded = Loaded::default();
    for path in files(paths)? {
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io { path: path.clone(), source })?;
        parse(&path.display().to_string(), &path, &text, &mut loaded);
    }
    Ok(loaded)
}

/// Loads and decodes every document of `paths`; any problem anywhere → `Invalid` with all of
/// them.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Located>, ManifestError> {
    let mut loaded = load_all(paths)?;
    if !loaded.problems.is_empty() {
        loaded.problems.sort();
        return Err(ManifestError::Invalid(loaded.problems));
    }
    Ok(loaded.docs)
}

/// Splits `text` on `---` lines: each document's lines with their 1-based numbers. Documents
/// with no content (only comments) are left out.
pub fn split(text: &str) -> Vec<Vec<(usize, &str)>> {
    let mut docs = vec![Vec::new()];
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(Vec::new());
            continue;
        }
        if let Some(doc) = docs.last_mut() {
            doc.push((i + 1, line));
        }
    }
    docs.retain(|d| d.iter().any(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    docs
}

/// serde_norway's message without its " at line L column C" (the problem's prefix says that).
fn without_position(message: &str, line: usize, column: usize) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

/// Parses and decodes the documents of one file's `text` into `loaded`.
pub fn parse(file: &str, path: &Path, text: &str, loaded: &mut Loaded) {
    for lines in split(text) {
        let loc = Locator::build(&lines);
        // Blank lines stand in for the lines before this document, so serde_norway's error
        // positions are the file's.
        let first = lines.first().map_or(1, |(n, _)| *n);
        let mut doc_text = "\n".repeat(first - 1);
        for (_, line) in &lines {
            doc_text.push_str(line);
            doc_text.push('\n');
        }
        let value: serde_yaml::Value = match serde_yaml::from_str(&doc_text) {
            Ok(v) => v,
            Err(e) => {
                let (line, column) = e.location().map_or((first, 1), |l| (l.line(), l.column()));
                let message = without_position(&e.to_string(), line, column);
                loaded.problems.push(Problem {
                    file: file.to_string(),
                    line,
                    column,
                    path: String::new(),
                    message: format!("invalid YAML: {message}"),
                });
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        if let Some((kind, name)) = decode::header(&value) {
            let at = loc.find(&FieldPath::default().key("metadata").key("name"), At::Value);
            loaded.headers.push(Header { kind, name, file: file.to_string(), at });
        }
        let origin = Origin { file: file.to_string(), path: path.to_path_buf(), line: loc.start().line };
        let mut ctx = Ctx { file, loc: &loc, problems: &mut loaded.problems };
        if let Some(doc) = decode::document(&mut ctx, &value, &origin) {
            loaded.docs.push(Located { doc, loc });
        }
    }
}
