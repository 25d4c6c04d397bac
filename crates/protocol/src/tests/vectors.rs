//! The shared transform vectors: `test_data/transform.json` holds random `transform` cases with
//! the results this crate computes, and the JavaScript client's tests check every case, so both
//! sides run the same function.
//!
//! The file is generated from a fixed seed. This test fails when it is not current; run
//! `TANDEM_BLESS=1 cargo test -p tandem-protocol vectors` to rewrite it, and review the diff.

use std::fmt::Write as _;

use crate::ot::{Edit, transform};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/transform.json");
const CASES: usize = 3_000;

/// splitmix64: a tiny generator whose sequence no dependency upgrade can change.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Code points the cases are made of: ASCII, accented and combining marks, CJK, and astral
/// emoji (a family sequence's parts and a skin tone among them), which are two UTF-16 units each.
const ALPHABET: &[char] = &[
    'a',
    'b',
    'c',
    'x',
    ' ',
    '\n',
    'é',
    '\u{301}',
    '中',
    '文',
    '😀',
    '👩',
    '\u{200d}',
    '👧',
    '\u{1f3fd}',
    '𝄞',
];

fn word(rng: &mut Rng, max: usize) -> String {
    (0..1 + rng.below(max)).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect()
}

/// Up to `max` edits, each fitting the text the ones before it leave of a text of `len`.
fn edits(rng: &mut Rng, mut len: usize, max: usize) -> Vec<Edit> {
    let mut edits = Vec::new();
    for _ in 0..1 + rng.below(max) {
        let edit = if len == 0 || rng.below(2) == 0 {
            Edit::Insert { index: rng.below(len + 1), text: word(rng, 4) }
        } else {
            let index = rng.below(len);
            Edit::Delete { index, len: 1 + rng.below((len - index).min(6)) }
        };
        len = (len as isize + edit.delta()) as usize;
        edits.push(edit);
    }
    edits
}

/// An edit as the vectors write it: `["i", index, text]` or `["d", index, length]`.
fn edit_json(edit: &Edit) -> serde_json::Value {
    match edit {
        Edit::Insert { index, text } => serde_json::json!(["i", index, text]),
        Edit::Delete { index, len } => serde_json::json!(["d", index, len]),
    }
}

fn list_json(edits: &[Edit]) -> serde_json::Value {
    edits.iter().map(edit_json).collect()
}

/// The whole file: a header, then one case per line so that a change shows as a readable diff.
fn generate() -> String {
    let mut rng = Rng(0x7a6e_6465_6d21);
    let mut out = String::from("{\n");
    out.push_str(
        "\"about\": \"transform(ours, theirs) = [ours_after, theirs_after] on text, in code \
         points; edits are [\\\"i\\\", index, text] or [\\\"d\\\", index, length]; written by \
         crates/protocol/src/tests/vectors.rs, do not edit\",\n\"cases\": [\n",
    );
    for case in 0..CASES {
        // Mostly short texts and lists, where the interesting cases are dense; some longer.
        let (max_text, max_edits) = if case % 10 == 9 { (24, 6) } else { (8, 3) };
        let text = if rng.below(8) == 0 { String::new() } else { word(&mut rng, max_text) };
        let len = text.chars().count();
        let ours = edits(&mut rng, len, max_edits);
        let theirs = edits(&mut rng, len, max_edits);
        let (ours_after, theirs_after) = transform(&ours, &theirs);
        let line = serde_json::json!({
            "text": text,
            "ours": list_json(&ours),
            "theirs": list_json(&theirs),
            "ours_after": list_json(&ours_after),
            "theirs_after": list_json(&theirs_after),
        });
        let comma = if case + 1 < CASES { "," } else { "" };
        let _ = writeln!(out, "{line}{comma}");
    }
    out.push_str("]\n}\n");
    out
}

#[test]
fn the_shared_transform_vectors_are_current() {
    let expected = generate();
    if std::env::var_os("TANDEM_BLESS").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/test_data"))
            .expect("creates test_data");
        std::fs::write(PATH, &expected).expect("writes the vectors");
        return;
    }
    let actual = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        actual == expected,
        "{PATH} is not current: run `TANDEM_BLESS=1 cargo test -p tandem-protocol vectors` and \
         review the diff"
    );
}

#[test]
fn the_vectors_are_valid_json_and_every_case_converges() {
    let value: serde_json::Value = serde_json::from_str(&generate()).expect("the vectors are JSON");
    let cases = value["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), CASES);
    let parse = |list: &serde_json::Value| -> Vec<Edit> {
        let list = list.as_array().expect("a list");
        list.iter()
            .map(|edit| match (edit[0].as_str(), edit[1].as_u64(), &edit[2]) {
                (Some("i"), Some(index), text) => Edit::Insert {
                    index: index as usize,
                    text: text.as_str().expect("text").to_owned(),
                },
                (Some("d"), Some(index), len) => {
                    Edit::Delete { index: index as usize, len: len.as_u64().expect("len") as usize }
                }
                other => panic!("not an edit: {other:?}"),
            })
            .collect()
    };
    let apply = |text: &str, edits: &[Edit]| -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for edit in edits {
            assert!(edit.apply(&mut chars), "{edit:?} fits");
        }
        chars.into_iter().collect()
    };
    let (mut splits, mut astral) = (0, 0);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let [ours, theirs, ours_after, theirs_after] =
            ["ours", "theirs", "ours_after", "theirs_after"].map(|key| parse(&case[key]));
        assert_eq!(
            apply(&apply(text, &ours), &theirs_after),
            apply(&apply(text, &theirs), &ours_after),
            "{case}"
        );
        splits += usize::from(ours_after.len() > ours.len() || theirs_after.len() > theirs.len());
        astral += usize::from(case.to_string().chars().any(|c| c.len_utf16() == 2));
    }
    // The cases reach the interesting rows: deletes cut around inserts, astral characters.
    assert!(splits > CASES / 20, "only {splits} cases split a delete");
    assert!(astral > CASES / 2, "only {astral} cases hold astral characters");
}
