//! Thin clients and a room over simulated connections: each connection delivers in order, but
//! connections interleave at random. At quiescence every client must equal the server.
//!
//! The room's history in memory can be made short, and clients can go away for long stretches
//! (editing offline) and come back: then their catch-up and their late edits come partly from
//! "the store", the log of every change the room handed out, as the server serves them.

use std::collections::VecDeque;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::SmallRng};

use super::{IDLE, join, secs};
use crate::{
    ClientMessage, Limits, Logged, Past, Reply, Resumed, Room, ServerMessage, ThinClient, catch_up,
};

struct Sim {
    rng: SmallRng,
    room: Room,
    clients: Vec<ThinClient>,
    up: Vec<VecDeque<ClientMessage>>,
    down: Vec<VecDeque<ServerMessage>>,
    /// Every change the room handed out, in revision order: the store.
    log: Vec<Logged>,
    /// Clients whose connection is down: they edit offline, and nothing reaches them.
    away: Vec<bool>,
}

impl Sim {
    fn new(seed: u64, clients: usize, initial: &str) -> Sim {
        Sim::with_history(seed, clients, initial, Limits::default().max_history)
    }

    /// A simulation whose room keeps `history` changes in memory.
    fn with_history(seed: u64, clients: usize, initial: &str, history: usize) -> Sim {
        let mut room =
            Room::new("notes", Limits { max_history: history, ..Limits::default() }, IDLE);
        let mut setup = join(&mut room, "setup");
        let mut log = Vec::new();
        if let Some(message) = setup.insert(0, initial).expect("fits") {
            let frame = serde_json::to_string(&message).expect("serializes");
            log.extend(room.handle("setup", &frame, secs(0)).logged);
        }
        room.leave("setup");
        let clients: Vec<ThinClient> =
            (0..clients).map(|i| join(&mut room, &format!("c{i}"))).collect();
        let n = clients.len();
        Sim {
            rng: SmallRng::seed_from_u64(seed),
            room,
            clients,
            up: vec![VecDeque::new(); n],
            down: vec![VecDeque::new(); n],
            log,
            away: vec![false; n],
        }
    }

    /// The room handles a frame, going to the store for an old revision as the server does.
    fn handle(&mut self, client: &str, frame: &str) -> Reply {
        let mut reply = self.room.handle(client, frame, secs(1));
        if let Some(revision) = reply.needs_past {
            let next_seq = match revision {
                0 => 1,
                r => self.log[r as usize - 1].next_seq,
            };
            let past = Past { revision, next_seq };
            reply = self.room.handle_with(client, frame, past, secs(1)).1;
            assert_eq!(reply.needs_past, None, "asked twice");
        }
        self.log.extend(reply.logged.iter().cloned());
        reply
    }

    fn send(&mut self, from: usize, message: Option<ClientMessage>) {
        // A client that is away sends into a dead connection: its change stays in flight.
        if !self.away[from] {
            self.up[from].extend(message);
        }
    }

    /// The server takes the next frame from client `from`.
    fn deliver_up(&mut self, from: usize) {
        let Some(message) = self.up[from].pop_front() else { return };
        let frame = serde_json::to_string(&message).expect("serializes");
        let id = self.clients[from].client_id().to_owned();
        let reply = self.handle(&id, &frame);
        for (to, inbox) in self.down.iter_mut().enumerate() {
            if self.away[to] {
                continue;
            }
            inbox.extend(if to == from {
                reply.to_sender.clone()
            } else {
                reply.to_others.clone()
            });
        }
    }

    /// Client `to` takes the next message from the server.
    fn deliver_down(&mut self, to: usize) {
        let Some(message) = self.down[to].pop_front() else { return };
        let next =
            self.clients[to].receive(message).expect("the client accepts what the server sends");
        self.send(to, next);
    }

    fn random_edit(&mut self, c: usize) {
        let client = &mut self.clients[c];
        let len = client.len();
        let message = match self.rng.random_range(0..10) {
            0..=5 => {
                let text = ["a", "bc", "é", "\n", "xyz"][self.rng.random_range(0..5)];
                client.insert(self.rng.random_range(0..=len), text).expect("fits")
            }
            6..=8 if len > 0 => {
                let index = self.rng.random_range(0..len);
                client.delete(index, self.rng.random_range(1..=(len - index).min(3))).expect("fits")
            }
            _ => client.increment_counter("n", 1),
        };
        self.send(c, message);
    }

    /// Drops client `c`'s connection: what it sent may or may not have reached the server (a
    /// random prefix did), and what the server sent and it had not read is lost.
    fn disconnect(&mut self, c: usize) {
        let arrived = self.rng.random_range(0..=self.up[c].len());
        for _ in 0..arrived {
            self.deliver_up(c);
        }
        self.up[c].clear();
        self.down[c].clear();
        let id = self.clients[c].client_id().to_owned();
        let left = self.room.leave(&id);
        self.route(c, left);
        self.away[c] = true;
    }

    /// Client `c` comes back and resumes from its revision, however far behind it is.
    fn come_back(&mut self, c: usize) {
        self.away[c] = false;
        let id = self.clients[c].client_id().to_owned();
        let since = self.clients[c].revision();
        let resumed = self
            .room
            .resume(&id, crate::Seat::default(), since, secs(1))
            .expect("not taken")
            .expect("every revision the client saw is in the history");
        let (reply, missed) = match resumed {
            Resumed::Reply(mut reply) => {
                let missed = reply.to_sender.split_off(1);
                (reply, missed)
            }
            Resumed::FromStore { reply, since, until, continued_after, tail } => {
                let stored = &self.log[since as usize..until as usize];
                let mut missed = catch_up(&id, stored, continued_after);
                missed.extend(tail);
                (reply, missed)
            }
        };
        let first = reply.to_sender.first().cloned().expect("a first message");
        let next = self.clients[c].reconnected(first).expect("resumes");
        self.down[c].extend(missed);
        self.send(c, next);
        self.route(c, Reply { to_sender: vec![], ..reply });
    }

    /// Drops client `c`'s connection and reconnects it at once.
    fn reconnect(&mut self, c: usize) {
        self.disconnect(c);
        self.come_back(c);
    }

    /// Queues a reply's messages for the others.
    fn route(&mut self, from: usize, reply: crate::Reply) {
        for (to, inbox) in self.down.iter_mut().enumerate() {
            if to != from {
                inbox.extend(reply.to_others.clone());
            }
        }
    }

    fn step(&mut self, reconnects: bool) {
        let c = self.rng.random_range(0..self.clients.len());
        if self.away[c] {
            // Away: it edits offline now and then, and comes back after a long while.
            match self.rng.random_range(0..100) {
                0 => self.come_back(c),
                1..=10 => self.random_edit(c),
                _ => {}
            }
            return;
        }
        match self.rng.random_range(0..40) {
            0 if reconnects => self.reconnect(c),
            1 if reconnects && self.rng.random_bool(0.3) => self.disconnect(c),
            0..=13 => self.random_edit(c),
            14..=26 => self.deliver_up(c),
            _ => self.deliver_down(c),
        }
    }

    fn busy(&self) -> bool {
        self.up.iter().any(|q| !q.is_empty()) || self.down.iter().any(|q| !q.is_empty())
    }

    /// Brings everyone back and delivers everything in flight, in a random interleaving of the
    /// connections.
    fn quiesce(&mut self) {
        for c in 0..self.clients.len() {
            if self.away[c] {
                self.come_back(c);
            }
        }
        while self.busy() {
            let c = self.rng.random_range(0..self.clients.len());
            if self.rng.random_bool(0.5) {
                self.deliver_up(c);
            } else {
                self.deliver_down(c);
            }
        }
    }

    fn assert_converged(&self) {
        let text = self.room.text();
        for client in &self.clients {
            assert!(client.is_synced(), "{} has unacknowledged changes", client.client_id());
            assert_eq!(client.text(), text, "{} differs from the server", client.client_id());
            assert_eq!(
                client.revision(),
                self.room.revision(),
                "{} is at another revision",
                client.client_id()
            );
            assert_eq!(client.counter("n"), self.room.counter("n"));
        }
    }
}

fn run(seed: u64, clients: usize, steps: usize, reconnects: bool) {
    let mut sim = Sim::new(seed, clients, "ABCD");
    for _ in 0..steps {
        sim.step(reconnects);
    }
    sim.quiesce();
    sim.assert_converged();
}

/// A room that keeps only `history` changes in memory, with clients that go away for long
/// stretches: their catch-up and their late edits come from the store. Returns how many
/// times a client came back from further than the history in memory reaches.
fn run_away(seed: u64, clients: usize, steps: usize, history: usize) -> usize {
    let mut sim = Sim::with_history(seed, clients, "ABCD", history);
    let mut far = 0;
    for _ in 0..steps {
        let before: Vec<bool> = sim.away.clone();
        let behind: Vec<u64> = sim.clients.iter().map(ThinClient::revision).collect();
        sim.step(true);
        for c in 0..sim.clients.len() {
            if before[c] && !sim.away[c] && behind[c] < sim.room.oldest_revision() {
                far += 1;
            }
        }
    }
    sim.quiesce();
    sim.assert_converged();
    far
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn clients_converge_with_the_server(seed: u64, clients in 2usize..=6, steps in 0usize..300) {
        run(seed, clients, steps, false);
    }

    #[test]
    fn clients_that_reconnect_converge_with_every_change_applied_once(seed: u64, clients in 2usize..=5, steps in 0usize..300) {
        run(seed, clients, steps, true);
    }
}

#[test]
fn fixed_seeds_converge() {
    for seed in 0..30 {
        run(seed, 5, 400, false);
        run(seed, 5, 400, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn clients_away_for_longer_than_the_history_in_memory_converge(seed: u64, clients in 2usize..=5, steps in 100usize..1_500) {
        run_away(seed, clients, steps, 10);
    }
}

#[test]
fn clients_come_back_from_thousands_of_revisions_away_with_every_change_applied_once() {
    let mut far = 0;
    for seed in 0..8 {
        far += run_away(seed, 4, 6_000, 50);
    }
    assert!(far >= 8, "only {far} clients came back from beyond the history in memory");
}

#[test]
fn runs_typed_at_the_same_place_stay_contiguous() {
    for seed in 0..50 {
        let mut sim = Sim::new(seed, 2, "[]");
        let mut typed = [0usize; 2];
        while typed.iter().any(|&n| n < 4) || sim.busy() {
            let c = sim.rng.random_range(0..2);
            match sim.rng.random_range(0..3) {
                0 if typed[c] < 4 => {
                    // The cursor follows the client's own last character, as in an editor.
                    let letter = ['a', 'b'][c];
                    let text: Vec<char> = sim.clients[c].text().chars().collect();
                    let at = text.iter().rposition(|&ch| ch == letter).map_or(1, |last| last + 1);
                    let message = sim.clients[c].insert(at, &letter.to_string()).expect("fits");
                    sim.send(c, message);
                    typed[c] += 1;
                }
                1 => sim.deliver_up(c),
                _ => sim.deliver_down(c),
            }
        }
        sim.assert_converged();
        let text = sim.room.text();
        assert!(
            text == "[aaaabbbb]" || text == "[bbbbaaaa]",
            "seed {seed}: runs interleaved: {text}"
        );
    }
}

#[test]
fn a_client_away_for_a_hundred_thousand_revisions_comes_back_with_its_edits_applied_once() {
    let mut sim = Sim::new(7, 2, "ABCD");
    // Bob types, and his connection drops with the change in flight.
    let message = sim.clients[1].insert(2, "[bob]").expect("fits");
    sim.send(1, message);
    sim.disconnect(1);
    // Offline, he goes on.
    let message = sim.clients[1].delete(0, 1).expect("fits");
    sim.send(1, message);
    // Meanwhile Ada makes a hundred thousand changes.
    while sim.room.revision() < 100_050 {
        let len = sim.clients[0].len();
        let message = if sim.rng.random_bool(0.3) && len > 8 {
            sim.clients[0].delete(sim.rng.random_range(0..len - 1), 1)
        } else {
            sim.clients[0].insert(sim.rng.random_range(0..=len), "a")
        };
        sim.send(0, message.expect("fits"));
        sim.deliver_up(0);
        sim.deliver_down(0);
    }
    assert!(sim.clients[1].revision() + 100_000 < sim.room.revision());
    sim.come_back(1);
    sim.quiesce();
    sim.assert_converged();
    assert_eq!(sim.room.text().matches("[bob]").count(), 1);
}
