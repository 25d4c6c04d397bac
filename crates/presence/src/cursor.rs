//! Cursor positions as line and column.

use serde::{Deserialize, Serialize};

/// A position in a text: 0-based line (lines split on `\n`) and 0-based column counted in
/// Unicode code points.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    pub line: usize,
    pub column: usize,
}

impl Cursor {
    pub const fn new(line: usize, column: usize) -> Cursor {
        Cursor { line, column }
    }

    /// The cursor at code point `index` of `text`; an index past the end means the end.
    pub fn from_index(text: &str, index: usize) -> Cursor {
        let mut cursor = Cursor::default();
        for c in text.chars().take(index) {
            if c == '\n' {
                cursor.line += 1;
                cursor.column = 0;
            } else {
                cursor.column += 1;
            }
        }
        cursor
    }

    /// The code point index of this cursor in `text`, clamped to the end of its line, and to
    /// the end of the text for a line past the last.
    pub fn to_index(self, text: &str) -> usize {
        let mut index = 0;
        for (number, line) in text.split('\n').enumerate() {
            let len = line.chars().count();
            if number == self.line {
                return index + self.column.min(len);
            }
            index += len + 1;
        }
        index.saturating_sub(1)
    }
}
