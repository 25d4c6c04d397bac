//! The presence table: users per document, their activity and idleness.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{Cursor, Error};

/// How long a user may be silent before counting as idle, unless configured otherwise.
pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(5 * 60);

/// Optional display fields a user can set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    pub name: Option<String>,
    pub color: Option<String>,
}

/// One user's presence in one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub cursor: Cursor,
    pub fields: Fields,
    /// When the user last did anything (joined, edited, moved, updated fields).
    pub last_active: Duration,
    /// Whether the user has been reported idle by [`Presence::newly_idle`] since their last
    /// activity. Bookkeeping of this table, not part of the user's presence.
    #[serde(skip)]
    reported_idle: bool,
}

impl User {
    /// Whether [`Presence::newly_idle`] has reported this user idle since their last activity,
    /// so that the next activity should be announced as a return.
    pub fn reported_idle(&self) -> bool {
        self.reported_idle
    }

    /// Whether the user has been silent for at least `idle_after` at time `now`.
    pub fn is_idle(&self, now: Duration, idle_after: Duration) -> bool {
        now.saturating_sub(self.last_active) >= idle_after
    }
}

/// Who is in each document.
///
/// Documents and users are named by strings the caller chooses; listings come out sorted by
/// them, so every run produces the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    idle_after: Duration,
    documents: BTreeMap<String, BTreeMap<String, User>>,
}

impl Default for Presence {
    fn default() -> Presence {
        Presence::new(DEFAULT_IDLE_AFTER)
    }
}

impl Presence {
    /// An empty table in which users count as idle after `idle_after` of silence.
    pub fn new(idle_after: Duration) -> Presence {
        Presence { idle_after, documents: BTreeMap::new() }
    }

    pub fn idle_after(&self) -> Duration {
        self.idle_after
    }

    /// Adds `user` to `doc` with the cursor at the start, or marks them active if already there.
    pub fn join(&mut self, doc: &str, user: &str, now: Duration) -> &User {
        let users = self.documents.entry(doc.to_owned()).or_default();
        let entry = users.entry(user.to_owned()).or_insert_with(|| User {
            cursor: Cursor::default(),
            fields: Fields::default(),
            last_active: now,
            reported_idle: false,
        });
        mark_active(entry, now);
        entry
    }

    /// Removes `user` from `doc`, returning their last presence.
    pub fn leave(&mut self, doc: &str, user: &str) -> Option<User> {
        let users = self.documents.get_mut(doc)?;
        let removed = users.remove(user);
        if users.is_empty() {
            self.documents.remove(doc);
        }
        removed
    }

    /// Records activity that changes nothing else, such as an edit.
    pub fn touch(&mut self, doc: &str, user: &str, now: Duration) -> Result<&User, Error> {
        self.update(doc, user, now, |_| {})
    }

    /// Moves `user`'s cursor.
    pub fn move_cursor(
        &mut self,
        doc: &str,
        user: &str,
        cursor: Cursor,
        now: Duration,
    ) -> Result<&User, Error> {
        self.update(doc, user, now, |entry| entry.cursor = cursor)
    }

    /// Sets the display fields given as `Some`; fields given as `None` keep their value.
    pub fn update_fields(
        &mut self,
        doc: &str,
        user: &str,
        fields: Fields,
        now: Duration,
    ) -> Result<&User, Error> {
        self.update(doc, user, now, |entry| {
            if fields.name.is_some() {
                entry.fields.name = fields.name;
            }
            if fields.color.is_some() {
                entry.fields.color = fields.color;
            }
        })
    }

    /// `user`'s presence in `doc`.
    pub fn user(&self, doc: &str, user: &str) -> Option<&User> {
        self.documents.get(doc)?.get(user)
    }

    /// Whether `user` is in `doc` and idle at `now`.
    pub fn is_idle(&self, doc: &str, user: &str, now: Duration) -> Option<bool> {
        Some(self.user(doc, user)?.is_idle(now, self.idle_after))
    }

    /// Every user in `doc`, idle or not, by user id.
    pub fn users<'a>(&'a self, doc: &str) -> impl Iterator<Item = (&'a str, &'a User)> + 'a {
        self.documents.get(doc).into_iter().flatten().map(|(id, user)| (id.as_str(), user))
    }

    /// The users in `doc` who are not idle at `now`, by user id.
    pub fn active_users<'a>(
        &'a self,
        doc: &str,
        now: Duration,
    ) -> impl Iterator<Item = (&'a str, &'a User)> + 'a {
        let idle_after = self.idle_after;
        self.users(doc).filter(move |(_, user)| !user.is_idle(now, idle_after))
    }

    /// The documents that have at least one user.
    pub fn documents(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }

    /// The users who have become idle since their last activity and were not reported yet, as
    /// `(doc, user)` pairs; each idle spell is reported once. Activity ends the spell: the
    /// caller, which sees the activity, reports the user active again.
    pub fn newly_idle(&mut self, now: Duration) -> Vec<(String, String)> {
        let mut idle = Vec::new();
        for (doc, users) in &mut self.documents {
            for (id, user) in users {
                if !user.reported_idle && user.is_idle(now, self.idle_after) {
                    user.reported_idle = true;
                    idle.push((doc.clone(), id.clone()));
                }
            }
        }
        idle
    }

    /// Removes every user silent for at least `silent_for` at `now`; returns them as
    /// `(doc, user)` pairs.
    pub fn expire(&mut self, now: Duration, silent_for: Duration) -> Vec<(String, String)> {
        let mut expired = Vec::new();
        for (doc, users) in &mut self.documents {
            users.retain(|id, user| {
                let keep = now.saturating_sub(user.last_active) < silent_for;
                if !keep {
                    expired.push((doc.clone(), id.clone()));
                }
                keep
            });
        }
        self.documents.retain(|_, users| !users.is_empty());
        expired
    }

    fn update(
        &mut self,
        doc: &str,
        user: &str,
        now: Duration,
        change: impl FnOnce(&mut User),
    ) -> Result<&User, Error> {
        let not_joined = || Error::NotJoined { doc: doc.to_owned(), user: user.to_owned() };
        let entry = self.documents.get_mut(doc).and_then(|users| users.get_mut(user));
        let entry = entry.ok_or_else(not_joined)?;
        change(entry);
        mark_active(entry, now);
        Ok(entry)
    }
}

/// Records activity at `now`; time given out of order never moves activity backwards.
fn mark_active(user: &mut User, now: Duration) {
    user.last_active = user.last_active.max(now);
    user.reported_idle = false;
}
