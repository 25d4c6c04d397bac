//! Thin clients and a room over simulated connections: each connection delivers in order, but
//! connections interleave at random. At quiescence every client must equal the server.

use std::collections::VecDeque;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::SmallRng};

use super::{join, room, secs};
use crate::{ClientMessage, Room, ServerMessage, ThinClient};

struct Sim {
    rng: SmallRng,
    room: Room,
    clients: Vec<ThinClient>,
    up: Vec<VecDeque<ClientMessage>>,
    down: Vec<VecDeque<ServerMessage>>,
}

impl Sim {
    fn new(seed: u64, clients: usize, initial: &str) -> Sim {
        let mut room = room();
        let mut setup = join(&mut room, "setup");
        if let Some(message) = setup.insert(0, initial).expect("fits") {
            room.handle("setup", &serde_json::to_string(&message).expect("serializes"), secs(0));
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
        }
    }

    fn send(&mut self, from: usize, message: Option<ClientMessage>) {
        self.up[from].extend(message);
    }

    /// The server takes the next frame from client `from`.
    fn deliver_up(&mut self, from: usize) {
        let Some(message) = self.up[from].pop_front() else { return };
        let frame = serde_json::to_string(&message).expect("serializes");
        let reply = self.room.handle(self.clients[from].client_id(), &frame, secs(1));
        for (to, inbox) in self.down.iter_mut().enumerate() {
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

    /// Drops client `c`'s connection and reconnects it: what it sent may or may not have
    /// reached the server (a random prefix did), and what the server sent and it had not read
    /// is lost. It then resumes from its revision.
    fn reconnect(&mut self, c: usize) {
        let arrived = self.rng.random_range(0..=self.up[c].len());
        for _ in 0..arrived {
            self.deliver_up(c);
        }
        self.up[c].clear();
        self.down[c].clear();
        let id = self.clients[c].client_id().to_owned();
        let left = self.room.leave(&id);
        self.route(c, left);
        let since = self.clients[c].revision();
        let reply = self
            .room
            .resume(&id, crate::Seat::default(), since, secs(1))
            .expect("not taken")
            .expect("the history reaches back");
        let mut to_sender = reply.to_sender.clone().into_iter();
        let first = to_sender.next().expect("a first message");
        let next = self.clients[c].reconnected(first).expect("resumes");
        self.down[c].extend(to_sender);
        self.send(c, next);
        self.route(c, crate::Reply { to_sender: vec![], ..reply });
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
        match self.rng.random_range(0..40) {
            0 if reconnects => self.reconnect(c),
            0..=13 => self.random_edit(c),
            14..=26 => self.deliver_up(c),
            _ => self.deliver_down(c),
        }
    }

    fn busy(&self) -> bool {
        self.up.iter().any(|q| !q.is_empty()) || self.down.iter().any(|q| !q.is_empty())
    }

    /// Delivers everything in flight, in a random interleaving of the connections.
    fn quiesce(&mut self) {
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
