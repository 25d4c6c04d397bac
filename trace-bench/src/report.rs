//! Formatting results as aligned Markdown tables, so the output can be pasted into the docs.

use std::{fmt::Write as _, time::Duration};

/// A table of text cells; numeric columns are right-aligned.
pub(crate) struct Table {
    header: Vec<&'static str>,
    /// Per column: whether it holds numbers.
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns: `(title, numeric)`.
    pub(crate) fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            header: columns.iter().map(|(title, _)| *title).collect(),
            numeric: columns.iter().map(|(_, numeric)| *numeric).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len(), "row width");
        self.rows.push(row);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                let cells = self.rows.iter().map(|row| row[column].chars().count());
                cells.chain([self.header[column].chars().count(), 3]).max().unwrap_or(3)
            })
            .collect();
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|title| (*title).to_owned()).collect();
        self.render_row(&mut out, &header, &widths);
        let rule: Vec<String> =
            widths
                .iter()
                .zip(&self.numeric)
                .map(|(&width, &numeric)| {
                    if numeric { format!("{}:", "-".repeat(width - 1)) } else { "-".repeat(width) }
                })
                .collect();
        self.render_row(&mut out, &rule, &widths);
        for row in &self.rows {
            self.render_row(&mut out, row, &widths);
        }
        out
    }

    fn render_row(&self, out: &mut String, cells: &[String], widths: &[usize]) {
        out.push('|');
        for ((cell, &width), &numeric) in cells.iter().zip(widths).zip(&self.numeric) {
            // Writing to a String cannot fail.
            let _ = if numeric {
                write!(out, " {cell:>width$} |")
            } else {
                write!(out, " {cell:<width$} |")
            };
        }
        out.push('\n');
    }
}

/// Milliseconds with a precision that suits the magnitude.
pub(crate) fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// `numerator / denominator` as a ratio with two decimals.
pub(crate) fn ratio(numerator: Duration, denominator: Duration) -> String {
    if denominator.is_zero() {
        return "-".to_owned();
    }
    format!("{:.2}", numerator.as_secs_f64() / denominator.as_secs_f64())
}

/// A byte count with thousands separators.
pub(crate) fn bytes(count: isize) -> String {
    let digits = count.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if count < 0 { format!("-{grouped}") } else { grouped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(1_234_567), "1,234,567");
        assert_eq!(bytes(-1000), "-1,000");
        assert_eq!(bytes(12), "12");
        assert_eq!(millis(Duration::from_micros(1_234)), "1.23");
        assert_eq!(millis(Duration::from_millis(1_234)), "1234");
        assert_eq!(ratio(Duration::from_millis(3), Duration::from_millis(2)), "1.50");
    }

    #[test]
    fn renders_aligned() {
        let mut table = Table::new(&[("name", false), ("ms", true)]);
        table.push(vec!["a".to_owned(), "1.5".to_owned()]);
        assert_eq!(table.render(), "| name |  ms |\n| ---- | --: |\n| a    | 1.5 |\n");
    }
}
