//! The HTTP side: routes, the embedded pages and client, and the WebSocket upgrade (checked and
//! run by the transport).

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use http_body_util::Full;
use hyper::{
    Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::{
    App,
    auth::{self, Access},
    limits::{self, Busy, Ticket},
    sessions::Refused,
    web::{self, Asset, Static},
};

pub(crate) type Body = Full<Bytes>;

/// A response refusing a request, boxed so that the `Result`s carrying it stay small.
type Denied = Box<Response<Body>>;

impl App {
    /// Serves one HTTP connection, which may upgrade to a WebSocket. On shutdown the request in
    /// progress is finished and the connection closed.
    /// `ticket` holds the connection's place under the connection limits; an upgraded
    /// WebSocket takes a share of it.
    pub(crate) async fn serve_http(
        self: Arc<Self>,
        io: TokioIo<TcpStream>,
        peer: SocketAddr,
        ticket: Arc<Ticket>,
    ) {
        let app = Arc::clone(&self);
        let service = service_fn(move |request| {
            let (app, ticket) = (Arc::clone(&app), Arc::clone(&ticket));
            async move { Ok::<_, Infallible>(app.route(request, ticket, peer.ip()).await) }
        });
        let connection = self.http1().serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let mut stopping = self.stopping.clone();
        let finished = tokio::select! {
            result = connection.as_mut() => Some(result),
            _ = stopping.wait_for(|stop| *stop) => None,
        };
        let result = match finished {
            Some(result) => result,
            None => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "http connection ended with an error");
        }
    }

    /// Turns a connection away: a 503 written at once, whatever the client sends, then the
    /// connection is closed. Nothing is read and nothing waits long, so refused connections
    /// cost next to nothing however many come.
    pub(crate) async fn refuse_http(self: Arc<Self>, mut stream: TcpStream, busy: Busy) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let message = busy.message();
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{message}",
            message.len()
        );
        let written = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await?;
            // Read what the client sent until it hangs up, so that closing with its request
            // unread does not reset the connection before it has read the answer.
            let mut discard = [0; 1024];
            while stream.read(&mut discard).await? > 0 {}
            Ok::<_, std::io::Error>(())
        });
        let _ = written.await;
    }

    /// Whether `peer` is one of `--trusted-proxy`.
    pub(crate) fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        limits::is_proxy(&self.config.trusted_proxies, peer)
    }

    /// HTTP/1 with a deadline for each request head (`--handshake-timeout`), so that a client
    /// that sends nothing, or a byte at a time, cannot hold a connection open.
    fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(Some(self.config.handshake_timeout));
        builder
    }

    async fn route(
        self: &Arc<Self>,
        request: Request<Incoming>,
        ticket: Arc<Ticket>,
        peer: IpAddr,
    ) -> Response<Body> {
        let path = request.uri().path().to_owned();
        // Where the request came from, as the per-address limits count it.
        let proxied = self.is_trusted_proxy(peer);
        let from = if proxied {
            let forwarded = request.headers().get_all("x-forwarded-for").iter();
            let forwarded = forwarded.map(|value| value.as_bytes());
            limits::forwarded_from(&self.config.trusted_proxies, peer, forwarded)
        } else {
            peer
        };
        if let Some(rest) = path.strip_prefix("/api/docs/") {
            return self.api(request, rest, from).await;
        }
        // HEAD is GET without the body, which hyper leaves out by itself.
        if !matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD) {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        match path.as_str() {
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            "/status" => match self.admin(&request) {
                Ok(()) => json(StatusCode::OK, &self.status()),
                Err(response) => *response,
            },
            "/metrics" => match self.admin(&request) {
                Ok(()) => {
                    let mut response = Response::new(Body::from(self.metrics_page()));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    );
                    response
                }
                Err(response) => *response,
            },
            _ => {
                if let Some(doc) = path.strip_prefix("/ws/") {
                    if request.method() != hyper::Method::GET {
                        return plain(StatusCode::BAD_REQUEST, "a WebSocket upgrade is a GET\n");
                    }
                    // Behind a proxy, the client's own place under the per-address limits.
                    let behind = if proxied {
                        match self.gate.admit_behind_proxy(from) {
                            Ok(place) => Some(place),
                            Err(busy) => {
                                self.metrics.refused(busy.reason());
                                return plain(StatusCode::SERVICE_UNAVAILABLE, busy.message());
                            }
                        }
                    } else {
                        None
                    };
                    return self.upgrade(request, doc, (ticket, behind)).await;
                }
                if let Some(doc) = path.strip_prefix("/d/") {
                    if !valid_id(doc, 128) {
                        let message =
                            "a document id is 1-128 of A-Z a-z 0-9 . _ -, not only dots\n";
                        return plain(StatusCode::BAD_REQUEST, message);
                    }
                    return file(&request, web::EDITOR, false);
                }
                match web::lookup(&path) {
                    Some(Static::Page(asset) | Static::App(asset)) => file(&request, asset, false),
                    Some(Static::Client(asset)) => file(&request, asset, true),
                    None => plain(StatusCode::NOT_FOUND, "not found\n"),
                }
            }
        }
    }

    /// Checks a WebSocket request for document `doc`, opens the client's session, and answers
    /// 101; the session then runs on the upgraded stream.
    async fn upgrade(
        self: &Arc<Self>,
        mut request: Request<Incoming>,
        doc: &str,
        places: (Arc<Ticket>, Option<Ticket>),
    ) -> Response<Body> {
        if !valid_id(doc, 128) {
            return plain(
                StatusCode::BAD_REQUEST,
                "a document id is 1-128 of A-Z a-z 0-9 . _ -, not only dots\n",
            );
        }
        let Query { client: requested, since, token } = match query(request.uri().query()) {
            Ok(parsed) => parsed,
            Err(message) => return plain(StatusCode::BAD_REQUEST, message),
        };
        if let Err(response) = self.check_origin(&request) {
            self.metrics.refused("origin");
            return *response;
        }
        let grant = match self.access(&request, token.as_deref(), doc) {
            Ok(grant) => grant,
            Err(denial) => {
                self.metrics.refused("auth");
                return denial.response();
            }
        };
        let accept = match tandem_transport::upgrade::accept_key(request.headers()) {
            Ok(accept) => accept,
            Err(error) => return plain(StatusCode::BAD_REQUEST, &format!("{error}\n")),
        };
        // A reader has no edits to resume, and must not take the id (and so the place and the
        // resent acks) of a writer whose id it saw in the presence list: it gets a fresh one.
        let requested = if grant.read_only { None } else { requested };
        let opened = match requested {
            Some(client) => {
                self.open(doc, &client, since, grant).await.map_err(|refused| (refused, client))
            }
            None => loop {
                let client = self.fresh_client_id();
                // A resumed client may already hold this id; take the next one.
                match self.open(doc, &client, None, grant).await {
                    Err(Refused::Taken) => continue,
                    other => break other.map_err(|refused| (refused, client)),
                }
            },
        };
        let session = match opened {
            Ok(session) => session,
            Err((Refused::Taken, client)) => {
                let message = format!("client {client} is already connected to {doc}\n");
                return plain(StatusCode::CONFLICT, &message);
            }
            Err((Refused::ShuttingDown, _)) => {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            }
            Err((Refused::Busy, _)) => {
                self.metrics.refused("busy");
                let message = "the server is busy sending to its clients; try again later\n";
                return plain(StatusCode::SERVICE_UNAVAILABLE, message);
            }
            Err((Refused::TooManyDocuments, _)) => {
                self.metrics.refused("documents");
                let message =
                    "the server has as many documents open as it takes; try again later\n";
                return plain(StatusCode::SERVICE_UNAVAILABLE, message);
            }
            Err((Refused::Unavailable(error), _)) => {
                tracing::error!(%doc, %error, "the document could not be loaded");
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the document could not be loaded\n",
                );
            }
        };
        let on_upgrade = hyper::upgrade::on(&mut request);
        let app = Arc::clone(self);
        tokio::spawn(async move {
            // The WebSocket keeps the connection's places under the limits while it runs.
            let _places = places;
            match on_upgrade.await {
                Ok(upgraded) => {
                    // Every line this connection logs carries its document and client.
                    let span = tracing::info_span!(
                        "connection",
                        doc = session.doc.as_str(),
                        client = session.client.as_str()
                    );
                    app.serve_socket(session, TokioIo::new(upgraded)).instrument(span).await;
                }
                Err(error) => {
                    let (doc, client) = (&session.doc, &session.client);
                    tracing::warn!(%client, %doc, %error, "websocket upgrade failed");
                    app.close(session);
                }
            }
        });
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response.headers_mut().extend(tandem_transport::upgrade::answer_headers(accept));
        response
    }
}

/// A request refused for its token: 401 or 403, and why.
pub(crate) struct Denial {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Denial {
    /// The refusal as plain text.
    fn response(self) -> Response<Body> {
        let message = format!("{}\n", self.message);
        match self.status {
            StatusCode::UNAUTHORIZED => *unauthorized(&message),
            status => plain(status, &message),
        }
    }
}

/// What a connection may do, from its token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grant {
    /// Read the document and presence and move a cursor, but change nothing.
    pub(crate) read_only: bool,
    /// When the token expires (seconds since the Unix epoch): the connection is closed then.
    pub(crate) expires: Option<u64>,
}

impl App {
    /// Refuses a browser's upgrade from an origin not allowed (cross-site WebSocket hijacking).
    fn check_origin(&self, request: &Request<Incoming>) -> Result<(), Denied> {
        let allowed = &self.config.allowed_origins;
        let Some(origin) = request.headers().get(header::ORIGIN) else { return Ok(()) };
        if allowed.is_empty()
            || allowed.iter().any(|allowed| allowed.as_bytes() == origin.as_bytes())
        {
            return Ok(());
        }
        Err(forbidden("this origin may not open WebSockets here\n"))
    }

    /// With a secret configured, the access a request's token gives to document `doc`; 401
    /// without a valid token, 403 with one for other documents. Without a secret, everyone
    /// writes, for as long as they like.
    pub(crate) fn access(
        &self,
        request: &Request<Incoming>,
        token: Option<&str>,
        doc: &str,
    ) -> Result<Grant, Denial> {
        let Some(secret) = &self.config.auth else {
            return Ok(Grant { read_only: false, expires: None });
        };
        let token = token.or_else(|| bearer(request));
        let Some(token) = token else {
            let message = "a token is needed: ?token=... or Authorization: Bearer ...";
            return Err(Denial { status: StatusCode::UNAUTHORIZED, message: message.into() });
        };
        let claims = secret.verify(token, auth::unix_now()).map_err(|error| Denial {
            status: StatusCode::UNAUTHORIZED,
            message: error.to_string(),
        })?;
        if claims.access == Access::Admin || !claims.covers(doc) {
            let message = "the token is not for this document".into();
            return Err(Denial { status: StatusCode::FORBIDDEN, message });
        }
        Ok(Grant { read_only: claims.access == Access::Read, expires: Some(claims.exp) })
    }

    /// With a secret configured, checks for an admin token in `Authorization: Bearer`.
    pub(crate) fn admin(&self, request: &Request<Incoming>) -> Result<(), Denied> {
        let checked = self.check_admin(request);
        if checked.is_err() {
            self.metrics.refused("auth");
        }
        checked
    }

    fn check_admin(&self, request: &Request<Incoming>) -> Result<(), Denied> {
        let Some(secret) = &self.config.auth else { return Ok(()) };
        let Some(token) = bearer(request) else {
            return Err(unauthorized("an admin token is needed: Authorization: Bearer ...\n"));
        };
        match secret.verify(token, auth::unix_now()) {
            Ok(claims) if claims.access == Access::Admin => Ok(()),
            Ok(_) => Err(forbidden("this needs an admin token\n")),
            Err(error) => Err(unauthorized(&format!("{error}\n"))),
        }
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(request: &Request<Incoming>) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(message: &str) -> Denied {
    let mut response = plain(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Box::new(response)
}

fn forbidden(message: &str) -> Denied {
    Box::new(plain(StatusCode::FORBIDDEN, message))
}

/// Whether `id` is 1 to `max` characters of `[A-Za-z0-9._-]`, not all dots (`.` and `..`
/// would be taken as path segments by every browser).
pub(crate) fn valid_id(id: &str, max: usize) -> bool {
    (1..=max).contains(&id.len())
        && id.bytes().all(auth::is_id_byte)
        && id.bytes().any(|b| b != b'.')
}

/// The query of a WebSocket request.
struct Query {
    client: Option<String>,
    since: Option<u64>,
    token: Option<String>,
}

/// The `client`, `since` and `token` query parameters, if given and valid. `since` resumes a
/// session and so needs `client`.
fn query(query: Option<&str>) -> Result<Query, &'static str> {
    let (mut client, mut since, mut token) = (None, None, None);
    for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        if let Some(value) = pair.strip_prefix("client=") {
            if !valid_id(value, 64) {
                return Err("a client id is 1-64 of A-Z a-z 0-9 . _ -\n");
            }
            client = Some(value.to_owned());
        } else if let Some(value) = pair.strip_prefix("since=") {
            since = Some(value.parse().map_err(|_| "since is a revision number\n")?);
        } else if let Some(value) = pair.strip_prefix("token=")
            && !value.is_empty()
        {
            token = Some(value.to_owned());
        }
    }
    if since.is_some() && client.is_none() {
        return Err("since resumes a session, so it needs client\n");
    }
    Ok(Query { client, since, token })
}

/// An embedded file, or 304 when the browser's copy is current. `cross_origin` lets pages of
/// any origin load it (the client modules, which applications import from their server).
fn file(request: &Request<Incoming>, asset: Asset, cross_origin: bool) -> Response<Body> {
    let etag = asset.etag();
    let current = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        // If-None-Match compares weakly: W/"x" matches "x".
        .map(|tag| tag.trim())
        .any(|tag| tag.strip_prefix("W/").unwrap_or(tag) == etag || tag == "*");
    let mut response = if current {
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(asset.body))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type()));
    // Revalidate every time: a stale client must never run against a newer server.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if cross_origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
