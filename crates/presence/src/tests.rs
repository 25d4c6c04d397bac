//! Tests of presence: membership, cursors, fields, idleness and expiry, with time passed in.

use std::time::Duration;

use crate::{Cursor, DEFAULT_IDLE_AFTER, Error, Fields, Presence};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ids<'a>(users: impl Iterator<Item = (&'a str, &'a crate::User)>) -> Vec<&'a str> {
    users.map(|(id, _)| id).collect()
}

#[test]
fn join_list_and_leave() {
    let mut presence = Presence::default();
    presence.join("notes", "bob", secs(0));
    presence.join("notes", "ada", secs(1));
    presence.join("plans", "cy", secs(2));
    assert_eq!(ids(presence.users("notes")), ["ada", "bob"]);
    assert_eq!(presence.documents().collect::<Vec<_>>(), ["notes", "plans"]);
    let left = presence.leave("notes", "bob").expect("was there");
    assert_eq!(left.last_active, secs(0));
    assert_eq!(ids(presence.users("notes")), ["ada"]);
    assert!(presence.leave("notes", "bob").is_none());
    presence.leave("plans", "cy");
    assert_eq!(presence.documents().collect::<Vec<_>>(), ["notes"], "empty documents go");
    assert_eq!(ids(presence.users("nowhere")), Vec::<&str>::new());
}

#[test]
fn cursor_and_fields_update_and_count_as_activity() {
    let mut presence = Presence::default();
    presence.join("notes", "ada", secs(0));
    presence.move_cursor("notes", "ada", Cursor::new(2, 7), secs(10)).expect("joined");
    let fields = Fields { name: Some("Ada".into()), color: Some("#e11d48".into()) };
    presence.update_fields("notes", "ada", fields, secs(20)).expect("joined");
    let recolor = Fields { name: None, color: Some("#2563eb".into()) };
    let user = presence.update_fields("notes", "ada", recolor, secs(30)).expect("joined");
    assert_eq!(user.cursor, Cursor::new(2, 7));
    assert_eq!(user.fields.name.as_deref(), Some("Ada"), "a missing field keeps its value");
    assert_eq!(user.fields.color.as_deref(), Some("#2563eb"));
    assert_eq!(user.last_active, secs(30));
}

#[test]
fn updates_for_someone_not_joined_are_errors() {
    let mut presence = Presence::default();
    presence.join("notes", "ada", secs(0));
    let error = presence.move_cursor("plans", "ada", Cursor::new(0, 0), secs(1));
    assert_eq!(error.err(), Some(Error::NotJoined { doc: "plans".into(), user: "ada".into() }));
    assert!(presence.touch("notes", "bob", secs(1)).is_err());
}

#[test]
fn users_go_idle_after_the_threshold_and_come_back_on_activity() {
    let mut presence = Presence::default();
    assert_eq!(presence.idle_after(), DEFAULT_IDLE_AFTER);
    presence.join("notes", "ada", secs(0));
    presence.join("notes", "bob", secs(100));
    let just_before = DEFAULT_IDLE_AFTER - Duration::from_millis(1);
    assert_eq!(presence.is_idle("notes", "ada", just_before), Some(false));
    assert_eq!(ids(presence.active_users("notes", just_before)), ["ada", "bob"]);
    assert_eq!(presence.is_idle("notes", "ada", DEFAULT_IDLE_AFTER), Some(true));
    assert_eq!(ids(presence.active_users("notes", DEFAULT_IDLE_AFTER)), ["bob"]);
    presence.touch("notes", "ada", secs(301)).expect("joined");
    assert_eq!(ids(presence.active_users("notes", secs(301))), ["ada", "bob"]);
}

#[test]
fn each_idle_spell_is_reported_once() {
    let mut presence = Presence::new(secs(10));
    presence.join("notes", "ada", secs(0));
    presence.join("notes", "bob", secs(5));
    assert!(presence.newly_idle(secs(9)).is_empty());
    assert_eq!(presence.newly_idle(secs(10)), [("notes".into(), "ada".into())]);
    assert!(presence.newly_idle(secs(11)).is_empty(), "already reported");
    assert_eq!(presence.newly_idle(secs(15)), [("notes".into(), "bob".into())]);
    presence.move_cursor("notes", "ada", Cursor::new(0, 1), secs(20)).expect("joined");
    assert!(presence.newly_idle(secs(29)).is_empty());
    assert_eq!(presence.newly_idle(secs(30)), [("notes".into(), "ada".into())]);
}

#[test]
fn expire_removes_long_silent_users() {
    let mut presence = Presence::new(secs(10));
    presence.join("notes", "ada", secs(0));
    presence.join("notes", "bob", secs(50));
    presence.join("plans", "cy", secs(0));
    let expired = presence.expire(secs(60), secs(60));
    assert_eq!(expired, [("notes".into(), "ada".into()), ("plans".into(), "cy".into())]);
    assert_eq!(ids(presence.users("notes")), ["bob"]);
    assert_eq!(presence.documents().collect::<Vec<_>>(), ["notes"]);
}

#[test]
fn time_given_out_of_order_never_moves_activity_back() {
    let mut presence = Presence::new(secs(10));
    presence.join("notes", "ada", secs(50));
    presence.touch("notes", "ada", secs(40)).expect("joined");
    assert_eq!(presence.user("notes", "ada").map(|user| user.last_active), Some(secs(50)));
}

#[test]
fn cursors_translate_to_and_from_indexes_in_code_points() {
    let text = "héllo\nwörld\n\nend";
    let cases = [
        (0, (0, 0)),
        (5, (0, 5)),
        (6, (1, 0)),
        (8, (1, 2)),
        (12, (2, 0)),
        (13, (3, 0)),
        (16, (3, 3)),
    ];
    for (index, (line, column)) in cases {
        assert_eq!(Cursor::from_index(text, index), Cursor::new(line, column), "index {index}");
        assert_eq!(Cursor::new(line, column).to_index(text), index, "cursor {line}:{column}");
    }
    assert_eq!(Cursor::from_index(text, 999), Cursor::new(3, 3), "past the end clamps");
    assert_eq!(Cursor::new(0, 99).to_index(text), 5, "past the line end clamps to it");
    assert_eq!(Cursor::new(9, 0).to_index(text), 16, "past the last line clamps to the end");
    assert_eq!(Cursor::new(0, 3).to_index(""), 0);
}
