//! Several rooms for one document, as nodes of a cluster, sharing one log: a node plans a
//! change against what it has, "publishes" it only if the log has nothing it lacks (compare
//! and set), and otherwise applies what it missed and plans again; every node applies the
//! others' changes as they come. Thin clients on different nodes must all end equal to every
//! node, with every change applied once.

use std::collections::VecDeque;

use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::SmallRng};

use super::{IDLE, secs};
use crate::{ClientMessage, Limits, Logged, Planned, Reply, Room, Seat, ServerMessage, ThinClient};

struct Cluster {
    rng: SmallRng,
    nodes: Vec<Room>,
    /// The shared log: every change, in revision order.
    log: Vec<Logged>,
    clients: Vec<ThinClient>,
    /// The node each client is connected to.
    home: Vec<usize>,
    up: Vec<VecDeque<ClientMessage>>,
    down: Vec<VecDeque<ServerMessage>>,
    /// Plans that lost the race and were made again.
    retries: usize,
}

impl Cluster {
    fn new(seed: u64, nodes: usize, clients: usize) -> Cluster {
        let mut rooms: Vec<Room> =
            (0..nodes).map(|_| Room::new("notes", Limits::default(), IDLE)).collect();
        let mut thin = Vec::new();
        let mut home = Vec::new();
        for c in 0..clients {
            let node = c % nodes;
            let reply =
                rooms[node].join(&format!("c{c}"), Seat::default(), secs(0)).expect("joins");
            thin.push(ThinClient::new(reply.to_sender[0].clone()).expect("a welcome"));
            home.push(node);
        }
        Cluster {
            rng: SmallRng::seed_from_u64(seed),
            nodes: rooms,
            log: Vec::new(),
            clients: thin,
            home,
            up: vec![VecDeque::new(); clients],
            down: vec![VecDeque::new(); clients],
            retries: 0,
        }
    }

    /// Node `n` applies the log entries it has not seen; its clients hear of them.
    fn follow(&mut self, n: usize) {
        let from = self.nodes[n].revision() as usize;
        if from == self.log.len() {
            return;
        }
        let missed = self.log[from..].to_vec();
        let reply = self.nodes[n].apply_remote(&missed).expect("the log applies on every node");
        self.route(n, None, reply);
    }

    /// Queues a reply for the clients of node `n`: `to_sender` for `sender`, `to_others` for
    /// everyone else there.
    fn route(&mut self, n: usize, sender: Option<usize>, reply: Reply) {
        for c in 0..self.clients.len() {
            if self.home[c] != n {
                continue;
            }
            let messages = if Some(c) == sender { &reply.to_sender } else { &reply.to_others };
            self.down[c].extend(messages.iter().cloned());
        }
    }

    /// The home node of client `c` takes its next frame: plans it against what the node has,
    /// and commits it if the log has nothing newer, else catches up and plans again.
    fn deliver_up(&mut self, c: usize) {
        let Some(message) = self.up[c].pop_front() else { return };
        let frame = serde_json::to_string(&message).expect("serializes");
        let (n, id) = (self.home[c], self.clients[c].client_id().to_owned());
        loop {
            let (_, planned) = self.nodes[n].plan(&id, &frame, secs(1));
            let plan = match planned {
                Planned::Reply(reply) => return self.route(n, Some(c), reply),
                Planned::Plan(plan) => plan,
            };
            if plan.base() as usize != self.log.len() {
                // Someone else stored a change first: take it in, and plan again.
                self.retries += 1;
                self.follow(n);
                continue;
            }
            let logged = plan.logged();
            let reply = self.nodes[n].commit_plan(plan, secs(1)).expect("planned just now");
            assert_eq!(reply.logged, logged, "the plan logs what committing it does");
            self.log.extend(logged);
            return self.route(n, Some(c), reply);
        }
    }

    fn deliver_down(&mut self, c: usize) {
        let Some(message) = self.down[c].pop_front() else { return };
        let next = self.clients[c].receive(message).expect("the client accepts it");
        self.up[c].extend(next);
    }

    fn edit(&mut self, c: usize) {
        let client = &mut self.clients[c];
        let len = client.len();
        let message = if len > 0 && self.rng.random_bool(0.35) {
            let index = self.rng.random_range(0..len);
            client.delete(index, self.rng.random_range(1..=(len - index).min(3))).expect("fits")
        } else if self.rng.random_bool(0.1) {
            client.increment_counter("n", 1)
        } else {
            let text = ["a", "é", "🙂", "xy"][self.rng.random_range(0..4)];
            client.insert(self.rng.random_range(0..=len), text).expect("fits")
        };
        self.up[c].extend(message);
    }

    fn step(&mut self) {
        let c = self.rng.random_range(0..self.clients.len());
        match self.rng.random_range(0..10) {
            0..=3 => self.edit(c),
            4..=6 => self.deliver_up(c),
            7..=8 => self.deliver_down(c),
            // A node's follower catches up now and then, not after every change.
            _ => {
                let n = self.rng.random_range(0..self.nodes.len());
                self.follow(n);
            }
        }
    }

    fn quiesce(&mut self) {
        loop {
            for n in 0..self.nodes.len() {
                self.follow(n);
            }
            let busy =
                self.up.iter().any(|q| !q.is_empty()) || self.down.iter().any(|q| !q.is_empty());
            if !busy {
                return;
            }
            for c in 0..self.clients.len() {
                self.deliver_up(c);
                self.deliver_down(c);
            }
        }
    }

    fn assert_converged(&self) {
        let text = self.nodes[0].text();
        for node in &self.nodes {
            assert_eq!(node.text(), text, "the nodes differ");
            assert_eq!(node.revision() as usize, self.log.len());
            assert_eq!(node.counter("n"), self.nodes[0].counter("n"));
        }
        for client in &self.clients {
            assert!(client.is_synced(), "{} has unacknowledged changes", client.client_id());
            assert_eq!(client.text(), text, "{} differs", client.client_id());
            assert_eq!(client.revision() as usize, self.log.len());
        }
    }
}

fn run(seed: u64, nodes: usize, clients: usize, steps: usize) -> usize {
    let mut cluster = Cluster::new(seed, nodes, clients);
    for _ in 0..steps {
        cluster.step();
    }
    cluster.quiesce();
    cluster.assert_converged();
    cluster.retries
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn clients_on_several_nodes_converge(seed: u64, nodes in 2usize..=4, clients in 2usize..=6, steps in 0usize..400) {
        run(seed, nodes, clients, steps);
    }
}

#[test]
fn plans_that_lose_the_race_are_made_again_and_everyone_converges() {
    let retries: usize = (0..20).map(|seed| run(seed, 3, 6, 500)).sum();
    assert!(retries > 50, "only {retries} plans lost a race: the test does not test that");
}

#[test]
fn a_stale_plan_is_refused_and_a_diverged_log_is_caught() {
    let (mut a, mut b) =
        (Room::new("notes", Limits::default(), IDLE), Room::new("notes", Limits::default(), IDLE));
    a.join("ada", Seat::default(), secs(0)).expect("joins");
    b.join("bob", Seat::default(), secs(0)).expect("joins");
    let insert = r#"{"type":"insert","revision":0,"index":0,"text":"hi"}"#;
    let Planned::Plan(plan) = a.plan("ada", insert, secs(1)).1 else { panic!("a plan") };
    let Planned::Plan(theirs) = b.plan("bob", insert, secs(1)).1 else { panic!("a plan") };
    let logged = theirs.logged();
    b.commit_plan(theirs, secs(1)).expect("commits");
    a.apply_remote(&logged).expect("applies");
    assert!(matches!(
        a.commit_plan(plan, secs(1)),
        Err(crate::Error::Stale { planned: 0, now: 1 })
    ));
    // A log entry whose ids do not match what applying it gives here: the node has diverged.
    let mut forged = logged.clone();
    forged[0].revision = 2;
    forged[0].next_seq = 99;
    assert!(matches!(a.apply_remote(&forged), Err(crate::Error::Invalid { revision: 2, .. })));
}
