//! Field path → line:column for one YAML document.
//!
//! serde_norway's `Value` carries no positions, so the decoder walks the `Value` tracking a
//! [`FieldPath`] and asks a [`Locator`] where that path is written. The locator is built by one
//! pass over the document's lines that follows block-style indentation: `key: value` lines, `- `
//! sequence items (also the Kubernetes style where items sit at their key's indentation),
//! quoted keys, and block scalars (`|`, `>`), whose lines it skips. Flow collections
//! (`{a: 1}`, `[a, b]`) are located as a whole: a path inside one resolves to the collection.
//! A path that is not written (a missing field) resolves to its nearest written ancestor.
//!
//! The rejected alternative: a second YAML parser with position events (yaml-rust2, saphyr)
//! just for positions — another dependency whose document splitting would have to agree with
//! serde_norway's; manifests are block-style YAML, which this pass covers.

use std::collections::HashMap;
use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into a document: `spec.configs["retention.ms"]`, `spec.outputs[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// This path extended by a key.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        FieldPath(segs)
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        FieldPath(segs)
    }

    fn parent(&self) -> Option<FieldPath> {
        let mut segs = self.0.clone();
        segs.pop().map(|_| FieldPath(segs))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if k.is_empty() || k.contains(['.', '[', ']', '"', ' ']) => write!(f, "[{k:?}]")?,
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Which end of a `key: value` entry a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The key (unknown field, duplicate name).
    Key,
    /// The value (wrong type, bad value).
    Value,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Pos,
    value: Pos,
}

/// Where each written path of one document is.
#[derive(Debug, Clone)]
pub struct Locator {
    entries: HashMap<FieldPath, Entry>,
    start: Pos,
}

/// A mapping or sequence being read: its items start at `indent` (0-based column).
struct Container {
    indent: usize,
    path: FieldPath,
    seq: bool,
    next_index: usize,
}

impl Locator {
    /// Builds the locator for one document: `lines` are (1-based line number, text).
    pub fn build(lines: &[(usize, &str)]) -> Locator {
        let start_line = lines.iter().find(|(_, t)| is_content(t)).map_or(1, |(n, _)| *n);
        let mut loc = Locator { entries: HashMap::new(), start: Pos { line: start_line, column: 1 } };
        let mut stack: Vec<Container> = Vec::new();
        // The path that the next more-indented container belongs to (a key with an empty value
        // or a sequence item).
        let mut pending = FieldPath::default();
        // Lines more indented than this belong to a block scalar.
        let mut block_scalar: Option<usize> = None;
        for &(line, text) in lines {
            let trimmed = text.trim_start_matches(' ');
            let indent = text.len() - trimmed.len();
            if !is_content(text) {
                continue;
            }
            if let Some(bi) = block_scalar {
                if indent > bi {
                    continue;
                }
                block_scalar = None;
            }
            while stack.last().is_some_and(|top| top.indent > indent) {
                stack.pop();
            }
            let (mut col, mut rest) = (indent, trimmed.trim_end());
            loop {
                if rest == "-" || rest.starts_with("- ") {
                    if !stack.last().is_some_and(|top| top.seq && top.indent == col) {
                        stack.push(Container { indent: col, path: pending.clone(), seq: true, next_index: 0 });
                    }
                    let Some(top) = stack.last_mut() else { break };
                    let item = top.path.index(top.next_index);
                    top.next_index += 1;
                    let after = rest[1..].trim_start_matches(' ');
                    let content_col = col + (rest.len() - after.len());
                    let pos = Pos { line, column: content_col + 1 };
                    loc.entries.insert(item.clone(), Entry { key: pos, value: pos });
                    pending = item;
                    if after.is_empty() || after.starts_with('#') {
                        break;
                    }
                    (col, rest) = (content_col, after);
                    continue;
                }
                let Some((key, value_offset)) = split_key(rest) else { break };
                if stack.last().is_some_and(|top| top.seq && top.indent == col) {
                    stack.pop();
                }
                if !stack.last().is_some_and(|top| !top.seq && top.indent == col) {
                    stack.push(Container { indent: col, path: pending.clone(), seq: false, next_index: 0 });
                }
                let Some(top) = stack.last() else { break };
                let path = top.path.key(&key);
                let key_pos = Pos { line, column: col + 1 };
                match value_offset {
                    None => {
                        loc.entries.insert(path.clone(), Entry { key: key_pos, value: key_pos });
                        pending = path;
                    }
                    Some(offset) => {
                        let value = &rest[offset..];
                        loc.entries.insert(path.clone(), Entry { key: key_pos, value: Pos { line, column: col + offset + 1 } });
                        if value.starts_with('|') || value.starts_with('>') {
                            block_scalar = Some(col);
                        }
                        pending = path;
                    }
                }
                break;
            }
        }
        loc
    }

    /// Where `path` is written; for a path not written (a missing field, or one inside a flow
    /// collection), its nearest written ancestor's value (its key when the value is a block);
    /// for none, the document's first line.
    pub fn find(&self, path: &FieldPath, at: At) -> Pos {
        if let Some(e) = self.entries.get(path) {
            return if at == At::Key { e.key } else { e.value };
        }
        let mut p = path.parent();
        while let Some(parent) = p {
            if let Some(e) = self.entries.get(&parent) {
                return e.value;
            }
            p = parent.parent();
        }
        self.start
    }

    /// The document's first content line.
    pub fn start(&self) -> Pos {
        self.start
    }
}

/// Not blank, not a comment, not a document marker or directive.
fn is_content(text: &str) -> bool {
    let t = text.trim();
    !(t.is_empty() || t.starts_with('#') || text.starts_with("---") || text.starts_with("...") || text.starts_with('%'))
}

/// `key: value` → (key, Some(byte offset of value)); `key:` → (key, None); anything else → None.
fn split_key(rest: &str) -> Option<(String, Option<usize>)> {
    let (key, after) = if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let close = rest[1..].find(q)? + 1;
        (rest[1..close].to_string(), &rest[close + 1..])
    } else {
        if rest.starts_with(['{', '[', '#', '&', '*', '!', '|', '>']) {
            return None;
        }
        let colon = rest.match_indices(':').map(|(i, _)| i).find(|&i| rest[i + 1..].is_empty() || rest[i + 1..].starts_with(' '))?;
        (rest[..colon].trim_end().to_string(), &rest[colon..])
    };
    let after_colon = after.trim_start_matches(' ').strip_prefix(':')?;
    let value = after_colon.trim_start_matches(' ');
    if value.is_empty() || value.starts_with('#') {
        return Some((key, None));
    }
    Some((key, Some(rest.len() - value.len())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn locator(text: &str) -> Locator {
        let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
        Locator::build(&lines)
    }

    fn path(segs: &[&str]) -> FieldPath {
        FieldPath(segs.iter().map(|s| s.parse::<usize>().map_or_else(|_| Seg::Key((*s).to_string()), Seg::Index)).collect())
    }

    /// Keys, nested keys, values and both sequence styles land on their exact line and column.
    #[test]
    fn block_style_positions() {
        let text = "\
# a comment
apiVersion: sluice/v1
kind: Transform
metadata:
  name: up
spec:
  input: a
  outputs:
  - b
  - c
  limits:
    memoryBytes: 12
  list:
    - x: 1
      y: 2
    - z: 3
  \"quoted.key\": v
";
        let loc = locator(text);
        let at = |segs: &[&str], at: At| {
            let p = loc.find(&path(segs), at);
            (p.line, p.column)
        };
        assert_eq!(at(&["kind"], At::Value), (3, 7));
        assert_eq!(at(&["metadata", "name"], At::Key), (5, 3));
        assert_eq!(at(&["spec", "input"], At::Value), (7, 10));
        assert_eq!(at(&["spec", "outputs", "0"], At::Value), (9, 5));
        assert_eq!(at(&["spec", "outputs", "1"], At::Value), (10, 5));
        assert_eq!(at(&["spec", "limits"], At::Key), (11, 3));
        assert_eq!(at(&["spec", "limits", "memoryBytes"], At::Value), (12, 18));
        assert_eq!(at(&["spec", "list", "0", "y"], At::Key), (15, 7));
        assert_eq!(at(&["spec", "list", "1", "z"], At::Value), (16, 10));
        assert_eq!(at(&["spec", "quoted.key"], At::Key), (17, 3));
        // Not written: the nearest ancestor's key; nothing at all: the first content line.
        assert_eq!(at(&["spec", "config", "x"], At::Value), (6, 1));
        assert_eq!(at(&["nope"], At::Key), (2, 1));
    }

    /// Block scalars are skipped (their `key: value`-looking lines are text); flow collections
    /// resolve to the collection.
    #[test]
    fn block_scalars_and_flow() {
        let text = "spec:\n  script: |\n    a: 1\n    b: 2\n  after: {x: 1}\n";
        let loc = locator(text);
        assert_eq!(loc.find(&path(&["spec", "a"]), At::Key), Pos { line: 1, column: 1 });
        assert_eq!(loc.find(&path(&["spec", "after"]), At::Value), Pos { line: 5, column: 10 });
        assert_eq!(loc.find(&path(&["spec", "after", "x"]), At::Value), Pos { line: 5, column: 10 });
    }

    /// URLs and other values with colons are values, not keys.
    #[test]
    fn colons_inside_values() {
        assert_eq!(split_key("wasm: https://x/y.wasm"), Some(("wasm".into(), Some(6))));
        assert_eq!(split_key("https://x/y"), None);
        assert_eq!(split_key("key:"), Some(("key".into(), None)));
        assert_eq!(split_key("key: # c"), Some(("key".into(), None)));
        assert_eq!(split_key("'a: b': c"), Some(("a: b".into(), Some(8))));
    }

    /// Paths print as a user writes them.
    #[test]
    fn path_display() {
        let p = FieldPath::default().key("spec").key("configs").key("retention.ms");
        assert_eq!(p.to_string(), "spec.configs[\"retention.ms\"]");
        assert_eq!(FieldPath::default().key("spec").key("outputs").index(1).to_string(), "spec.outputs[1]");
    }
}
