//! WebSocket sessions: seating a client in its document (a welcome, or a resume from any
//! revision, the part older than the history in memory streamed from the store at the
//! client's pace), handling its frames (going to the store for an edit made at an old
//! revision), and taking it out again.

use std::{
    sync::{Arc, PoisonError},
    time::Duration,
};

use tandem_protocol::{
    ErrorCode, Logged, Past, Planned, Reply, Resumed, Seat, ServerMessage, VersionRequest,
    catch_up, refusal, request_id,
};
use tandem_transport::{Closed, Connection, Frame, Handle, Message};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    App, auth, history,
    http::Grant,
    limits,
    rooms::{LoadError, Slot},
    versions::{Asker, VersionError},
};

/// The refusal of an edit from far back over the document's allowance (`limits::OldEdits`).
const OLD_EDITS_REFUSED: &str =
    "too many edits from far back in this document's history at once; send it again later";

/// An open WebSocket session: its connection, the client it carries into which document, and
/// its share in the shutdown wait.
pub(crate) struct Session {
    pub(crate) connection: Connection,
    pub(crate) doc: String,
    pub(crate) client: String,
    /// When the connection's token expires, if it has one.
    expires: Option<u64>,
    /// The changes to stream from the store before anything else, after a resume from
    /// further back than the history in memory.
    catch_up: Option<CatchUp>,
    _alive: mpsc::Sender<()>,
}

/// Why a session could not be opened.
pub(crate) enum Refused {
    /// The client id is already in the document.
    Taken,
    ShuttingDown,
    /// The document could not be loaded from the store.
    Unavailable(LoadError),
    /// `max_documents` are loaded and this is not one of them.
    TooManyDocuments,
    /// The connections' queues hold so much that this welcome would pass their bound.
    Busy,
}

/// A catch-up from the store (see [`Resumed::FromStore`]): sent to the connection, which holds
/// everything else meanwhile, ahead of it.
struct CatchUp {
    resumed: ServerMessage,
    since: u64,
    until: u64,
    continued_after: bool,
    tail: Vec<ServerMessage>,
    /// The outbox item after which every change in `tail` is stored.
    stored_with: u64,
}

impl App {
    /// Registers a connection for `client` and seats the client in document `doc`, loading
    /// the document if needed: queues the welcome, or, when it resumes from revision `since`,
    /// the changes it missed. Done under the room's lock, so no change can be queued for the
    /// client before those.
    pub(crate) async fn open(
        self: &Arc<Self>,
        doc: &str,
        client: &str,
        since: Option<u64>,
        grant: Grant,
    ) -> Result<Session, Refused> {
        let alive = self.alive.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let alive = alive.ok_or(Refused::ShuttingDown)?;
        if !self.may_load(doc) {
            return Err(Refused::TooManyDocuments);
        }
        let connection = self.pool.register();
        let handle = connection.handle();
        let seat = Seat { connection: connection.id().0, read_only: grant.read_only };
        // A welcome holds the whole text: it takes room in the outbox like a frame's reply
        // (joins wait while the outbox is full), and must fit the bound on what all the
        // connections may have queued.
        let size = self
            .with_room(doc, |slot| slot.room.welcome_bytes())
            .await
            .map_err(Refused::Unavailable)?;
        let queued = self.pool.queued_bytes();
        if queued.saturating_add(size) > self.config.transport.total_queue_bytes {
            return Err(Refused::Busy);
        }
        let permit = self.outbox.reserve(size).await;
        let seated = self
            .with_room(doc, |slot| {
                let now = self.now();
                let resumed = match since {
                    Some(since) => slot.room.resume(client, seat, since, now)?,
                    None => None,
                };
                match resumed {
                    Some(Resumed::Reply(mut reply)) => {
                        self.add_remote_users(slot, client, &mut reply);
                        self.dispatch_frame(slot, client, reply, Some(permit));
                        Ok(None)
                    }
                    Some(Resumed::FromStore { mut reply, since, until, continued_after, tail }) => {
                        self.add_remote_users(slot, client, &mut reply);
                        // Everything for the client waits behind the catch-up, which the
                        // session streams itself, `resumed` first.
                        handle.hold();
                        let Reply { mut to_sender, to_others, .. } = reply;
                        let resumed = to_sender.remove(0);
                        self.dispatch_frame(
                            slot,
                            client,
                            Reply::to_others(to_others),
                            Some(permit),
                        );
                        let stored_with = slot.last_item;
                        Ok(Some(CatchUp {
                            resumed,
                            since,
                            until,
                            continued_after,
                            tail,
                            stored_with,
                        }))
                    }
                    None => {
                        let mut reply = slot.room.join(client, seat, now)?;
                        self.add_remote_users(slot, client, &mut reply);
                        self.dispatch_frame(slot, client, reply, Some(permit));
                        Ok(None)
                    }
                }
            })
            .await
            .map_err(Refused::Unavailable)?;
        // The only refusal is an id already in the document; the connection unregisters.
        let catch_up = seated.map_err(|_: tandem_protocol::Error| Refused::Taken)?;
        let (doc, client) = (doc.to_owned(), client.to_owned());
        Ok(Session { connection, doc, client, expires: grant.expires, catch_up, _alive: alive })
    }

    /// In a cluster: adds the users of other nodes to a welcome or `resumed` of `client`,
    /// which is here now (whatever another node said of it before).
    fn add_remote_users(&self, slot: &mut Slot, client: &str, reply: &mut Reply) {
        let Some(cluster) = &self.cluster else { return };
        let doc = slot.room.id().to_owned();
        let doc = doc.as_str();
        cluster.forget_remote(doc, client);
        let user = reply.to_others.iter().find_map(|message| match message {
            ServerMessage::Presence(user) if user.client_id == client => Some(user.clone()),
            _ => None,
        });
        let at = crate::auth::unix_now_ms();
        slot.joined_at.retain(|member, _| slot.room.connection(member).is_some());
        slot.joined_at.insert(client.to_owned(), at);
        cluster.joined(doc, client, user, at);
        let remote = cluster.remote_users(doc);
        if let Some(ServerMessage::Welcome { users, .. } | ServerMessage::Resumed { users, .. }) =
            reply.to_sender.first_mut()
        {
            // A client here (this one, come over from another node) is listed as it is here.
            let here: std::collections::HashSet<String> =
                users.iter().map(|user| user.client_id.clone()).collect();
            users.extend(remote.into_iter().filter(|user| !here.contains(&user.client_id)));
        }
    }

    /// Runs an upgraded connection until it ends, then closes its session.
    pub(crate) async fn serve_socket<S>(self: &Arc<Self>, mut session: Session, io: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (doc, client) = (session.doc.clone(), session.client.clone());
        tracing::info!(%client, %doc, "connected");
        let (doc, client) = (&doc, &client);
        let config = &self.config;
        let limit = limits::MessageLimit::new(
            config.message_rate,
            config.message_burst,
            config.max_rate_refusals,
        );
        let limit = &limit;
        let handle = session.connection.handle();
        // The catch-up from the store runs beside the connection.
        let catch_up = session.catch_up.take().map(|job| {
            let (app, handle) = (Arc::clone(self), handle.clone());
            let (doc, client) = (doc.clone(), client.clone());
            tokio::spawn(async move { app.stream_catch_up(&doc, &client, &handle, job).await })
        });
        let handle = &handle;
        // A connection lasts no longer than its token: then it is closed with 1008, and the
        // client comes back with a fresh one.
        let expiry = session.expires.map(|expires| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let left = expires.saturating_sub(auth::unix_now());
                tokio::time::sleep(Duration::from_secs(left)).await;
                handle.close_for_policy("the token has expired");
            })
        });
        let closed = session
            .connection
            .run(io, |frame| async move {
                let verdict = limit.verdict();
                if verdict != limits::Verdict::Handle {
                    self.rate_limited(doc, client, handle, &frame, verdict);
                    return;
                }
                self.handle_frame(doc, client, frame).await;
            })
            .await;
        for task in [expiry, catch_up].into_iter().flatten() {
            task.abort();
        }
        if closed == Closed::SlowConsumer {
            self.metrics.slow_consumer();
        }
        match &closed {
            Closed::Failed(error) => tracing::warn!(%client, %doc, %error, "connection failed"),
            closed => tracing::info!(%client, %doc, ?closed, "disconnected"),
        }
        self.close(session);
    }

    /// Handles one frame of `client`'s: under the room's lock, and, for an edit made at a
    /// revision older than the history in memory, again with what the store knows of it.
    async fn handle_frame(self: &Arc<Self>, doc: &str, client: &str, frame: Frame) {
        let bytes = match &frame {
            Frame::Text(text) => text.len(),
            Frame::Binary => 0,
        };
        // Room in the outbox first: while it is full, this client waits, unread.
        let mut permit = Some(self.outbox.reserve(bytes).await);
        let started = Instant::now();
        let cluster = self.cluster.is_some();
        let more = self.with_loaded(doc, |slot| {
            let (kind, planned) = match &frame {
                Frame::Text(text) => slot.room.plan(client, text, self.now()),
                Frame::Binary => (None, Planned::Reply(slot.room.handle_binary())),
            };
            let mut reply = match planned {
                // In a cluster a change is appended to the shared log before it is committed.
                Planned::Plan(_) if cluster => return Some(More::Append),
                Planned::Plan(plan) => match slot.room.commit_plan(plan, self.now()) {
                    Ok(reply) => reply,
                    Err(error) => Reply::refused(None, ErrorCode::OutOfRange, error.to_string()),
                },
                Planned::Reply(reply) => reply,
            };
            if let Some(revision) = reply.needs_past {
                if !slot.old_edits.admit() {
                    self.metrics.refused("old_edits");
                    let Frame::Text(text) = &frame else { return None };
                    let refused = refusal(text, ErrorCode::RateLimited, OLD_EDITS_REFUSED);
                    self.dispatch_frame(slot, client, Reply::to_sender(refused), permit.take());
                    return None;
                }
                return Some(if cluster { More::Append } else { More::Past(revision) });
            }
            self.metrics.received(kind);
            if let Some(request) = reply.version.take() {
                return Some(More::Version(request));
            }
            self.dispatch_frame(slot, client, reply, permit.take());
            None
        });
        self.metrics.applied(started.elapsed());
        let revision = match (more, &frame) {
            (None, _) => {
                tracing::error!(%client, %doc, "the document of a connected client is not loaded");
                return;
            }
            (Some(Some(More::Past(revision))), Frame::Text(_)) => revision,
            (Some(Some(More::Version(request))), _) => {
                return self.version_request(doc, client, request).await;
            }
            (Some(Some(More::Append)), Frame::Text(text)) => {
                let text = text.as_str();
                self.metrics.received(Some("change"));
                let plan = |slot: &mut Slot, past: Option<Past>| {
                    let now = self.now();
                    match past {
                        Some(past) => slot.room.plan_with(client, text, past, now).1,
                        None => slot.room.plan(client, text, now).1,
                    }
                };
                self.append_change(doc, client, request_id(text), permit, plan).await;
                return;
            }
            _ => return,
        };
        let Frame::Text(text) = &frame else { return };
        let (store, id) = (Arc::clone(&self.store), doc.to_owned());
        let read = tokio::task::spawn_blocking(move || history::next_seq(&*store, &id, revision));
        let next_seq = match read.await {
            Ok(Ok(next_seq)) => next_seq,
            Ok(Err(error)) => {
                tracing::error!(%client, %doc, %error, "reading an old revision failed");
                None
            }
            Err(error) => {
                tracing::error!(%client, %doc, %error, "reading an old revision stopped");
                None
            }
        };
        self.with_loaded(doc, |slot| {
            let reply = match next_seq {
                Some(next_seq) => {
                    let past = Past { revision, next_seq };
                    let (kind, reply) = slot.room.handle_with(client, text, past, self.now());
                    self.metrics.received(kind);
                    reply
                }
                None => {
                    let message = format!("revision {revision} is not in this document's history");
                    let refused = refusal(text, ErrorCode::StaleRevision, message);
                    Reply::to_sender(refused)
                }
            };
            self.dispatch_frame(slot, client, reply, permit.take());
        });
    }

    /// Saves or restores a version as a client asked over its WebSocket; a refusal is an
    /// `error` for it.
    async fn version_request(self: &Arc<Self>, doc: &str, client: &str, request: VersionRequest) {
        let (id, done) = match request {
            VersionRequest::Save { id, label, revision } => {
                let asker = Asker::Client { client: client.to_owned(), id: id.clone() };
                (id, self.save_version(doc, asker, &label, Some(revision)).await.map(drop))
            }
            VersionRequest::Restore { id, label } => {
                let asker = Asker::Client { client: client.to_owned(), id: id.clone() };
                (id, self.restore_version(doc, asker, &label).await.map(drop))
            }
        };
        let Err(error) = done else { return };
        let code = match &error {
            VersionError::Exists { .. } => ErrorCode::Conflict,
            VersionError::Missing { .. } | VersionError::NotKept { .. } => ErrorCode::NotFound,
            VersionError::TooMany => ErrorCode::TooLarge,
            // The client had its error from the cluster already.
            VersionError::NotStored => return,
            other => {
                tracing::error!(%client, %doc, error = %other, "a version request failed");
                ErrorCode::Unavailable
            }
        };
        self.with_loaded(doc, |slot| {
            self.dispatch(slot, client, Reply::refused(id, code, error.to_string()));
        });
    }

    /// Streams a catch-up from the store to `handle` at the client's pace: `resumed`, the
    /// stored changes a page at a time, then, once they are stored, the changes from memory;
    /// then lets through what was held meanwhile. A failure closes the connection, and the
    /// client comes back and tries again.
    async fn stream_catch_up(&self, doc: &str, client: &str, handle: &Handle, job: CatchUp) {
        if let Err(error) = self.try_catch_up(doc, client, handle, job).await {
            tracing::error!(%client, %doc, %error, "catching a client up failed");
            handle.close_for_policy("the document's history could not be read");
        }
    }

    async fn try_catch_up(
        &self,
        doc: &str,
        client: &str,
        handle: &Handle,
        job: CatchUp,
    ) -> Result<(), CatchUpError> {
        let send = |message: ServerMessage| async move {
            self.metrics.sent(&message, 1);
            handle.send_through(Message::text(message.to_json())).await
        };
        if !send(job.resumed).await {
            return Ok(());
        }
        // The last change read waits for the next page, which says whether it continues.
        let mut carried: Vec<Logged> = Vec::new();
        let mut after = job.since;
        while after < job.until {
            let (store, id, until) = (Arc::clone(&self.store), doc.to_owned(), job.until);
            let read = move || history::changes(&*store, &id, after, until, history::PAGE);
            let page = tokio::task::spawn_blocking(read).await??;
            if page.first().is_none_or(|first| first.revision != after + 1) {
                return Err(CatchUpError::Missing { revision: after + 1 });
            }
            after = page.last().map_or(after, |last| last.revision);
            carried.extend(page);
            let last = carried.pop();
            let continued = last.as_ref().is_some_and(|last| last.continued);
            for message in catch_up(client, &carried, continued) {
                if !send(message).await {
                    return Ok(());
                }
            }
            carried = last.into_iter().collect();
        }
        for message in catch_up(client, &carried, job.continued_after) {
            if !send(message).await {
                return Ok(());
            }
        }
        // The changes from memory may still be on their way to the store.
        if !self.outbox.stored(job.stored_with).await {
            return Ok(());
        }
        for message in job.tail {
            if !send(message).await {
                return Ok(());
            }
        }
        handle.release().await;
        Ok(())
    }

    /// Answers a message over the connection's rate with `rate_limited` (through the outbox, so
    /// after everything queued for the client before it), or closes the connection with 1008
    /// once it has been refused too often.
    fn rate_limited(
        &self,
        doc: &str,
        client: &str,
        handle: &Handle,
        frame: &Frame,
        verdict: limits::Verdict,
    ) {
        self.metrics.refused("rate");
        if verdict == limits::Verdict::Close {
            tracing::warn!(%client, %doc, "closing a connection that keeps sending too fast");
            handle.close_for_policy("too many messages over the rate limit");
            return;
        }
        let text = match frame {
            Frame::Text(text) => text.as_str(),
            Frame::Binary => "",
        };
        let message = refusal(
            text,
            ErrorCode::RateLimited,
            format!(
                "more than {} messages a second (bursts of {}); this one was not handled",
                self.config.message_rate, self.config.message_burst
            ),
        );
        let queued = self.with_loaded(doc, |slot| {
            self.dispatch(slot, client, Reply::to_sender(message));
        });
        if queued.is_none() {
            tracing::error!(%client, %doc, "the document of a connected client is not loaded");
        }
    }

    /// Takes the session's client out of its room and unregisters its connection, in one step
    /// under the room's lock: a reconnect with the same client id cannot slip in between.
    pub(crate) fn close(&self, session: Session) {
        let Session { connection, doc, client, .. } = session;
        let mut connection = Some(connection);
        self.with_loaded(&doc, |slot| {
            drop(connection.take());
            let reply = slot.room.leave(&client);
            self.dispatch(slot, &client, reply);
        });
    }
}

/// What a frame needs after its first handling.
enum More {
    /// In a cluster: appending to the shared log, then committing.
    Append,
    /// The next character id of an old revision, from the store.
    Past(u64),
    /// A version saved or restored.
    Version(VersionRequest),
}

/// Why a catch-up from the store failed.
#[derive(Debug, thiserror::Error)]
enum CatchUpError {
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error("reading the store stopped")]
    Interrupted(#[from] tokio::task::JoinError),
    #[error("the store lacks the change of revision {revision}")]
    Missing { revision: u64 },
}
