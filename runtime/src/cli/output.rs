//! How `get` and `describe` print: an aligned text table for people, YAML or JSON (the admin
//! API's own bodies) for scripts.

use serde::Serialize;

/// `-o table|yaml|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// The API's body as YAML.
    Yaml,
    /// The API's body as pretty JSON.
    Json,
}

/// Serialises `value` as YAML or JSON (ending in a newline).
pub fn structured(value: &impl Serialize, format: Format) -> anyhow::Result<String> {
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(value)? + "\n"),
        // `Table` callers render their own table; YAML is the readable fallback.
        Format::Yaml | Format::Table => Ok(serde_yaml::to_string(value)?),
    }
}

/// A text table: a header row and rows of cells, columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Adds a row (missing cells print empty, extra cells are kept).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, or `empty` when it has no rows.
    pub fn render(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let columns = self.rows.iter().map(Vec::len).chain([self.header.len()]).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < columns {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `k=v,k=v` of a config map, `-` when empty.
pub fn pairs<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let joined: Vec<String> = map.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if joined.is_empty() {
        "-".to_string()
    } else {
        joined.join(",")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_say_when_empty() {
        let mut t = Table::new(&["NAME", "PARTITIONS"]);
        t.row(vec!["orders".into(), "3".into()]);
        t.row(vec!["a".into(), "12".into()]);
        assert_eq!(t.render("none"), "NAME    PARTITIONS\norders  3\na       12\n");
        assert_eq!(Table::new(&["X"]).render("no topics"), "no topics\n");
    }

    #[test]
    fn structured_output_is_the_body() {
        let v = serde_json::json!({"name": "t", "partitions": 2});
        assert_eq!(structured(&v, Format::Json).unwrap(), "{\n  \"name\": \"t\",\n  \"partitions\": 2\n}\n");
        assert_eq!(structured(&v, Format::Yaml).unwrap(), "name: t\npartitions: 2\n");
    }
}
