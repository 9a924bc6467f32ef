//! How an answer is shown: the server's JSON as it came, or a table for people.

use std::io::IsTerminal;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

impl Output {
    /// Tables at a terminal, JSON in a pipe: a script never parses a table by accident.
    pub fn for_stdout() -> Output {
        if std::io::stdout().is_terminal() { Output::Table } else { Output::Json }
    }
}

/// A table's columns: (heading, the field each row shows there).
pub type Columns = &'static [(&'static str, &'static str)];

/// Rows under `columns`, each column as wide as its widest cell.
pub fn rows(items: &[Value], columns: Columns) -> String {
    let mut lines: Vec<Vec<String>> =
        vec![columns.iter().map(|(heading, _)| heading.to_string()).collect()];
    lines.extend(items.iter().map(|item| columns.iter().map(|(_, f)| cell(&item[*f])).collect()));
    aligned(&lines)
}

/// One record as `field  value` lines, every field it has.
pub fn record(item: &Value) -> String {
    let lines: Vec<Vec<String>> = match item {
        Value::Object(fields) => fields.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect(),
        other => vec![vec![cell(other)]],
    };
    aligned(&lines)
}

fn aligned(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines.iter().filter_map(|l| l.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<width$}", width = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A value as one cell: lists joined by commas, nothing as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_and_lists_join() {
        let items =
            [json!({"id": "a", "scopes": ["x", "y"]}), json!({"id": "long-id", "scopes": []})];
        let text = rows(&items, &[("ID", "id"), ("SCOPES", "scopes")]);
        assert_eq!(text, "ID       SCOPES\na        x,y\nlong-id  -\n");
    }
}
