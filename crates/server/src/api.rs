//! The history API, JSON over HTTP under `/api/docs/{doc}`: the document, its text at any
//! revision, its changes, and its named versions (list, save, restore). Errors are
//! `{"code": ..., "message": ...}` with a 4xx status (5xx when the store fails). With a
//! secret, reading takes a read or write token for the document, saving and restoring a write
//! token (`Authorization: Bearer` or `?token=`).

use std::{net::IpAddr, sync::Arc};

use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header};
use serde_json::json;
use tandem_protocol::is_label;
use tandem_store::{Page, records::VersionRecord};

use crate::{
    App, auth, history,
    http::{Body, json, valid_id},
    versions::{Asker, VersionError},
};

/// The most changes one `changes` request returns.
const MAX_CHANGES: u64 = 10_000;

/// The most bytes of stored changes one `changes` request reads: past them, the answer stops
/// early, and its `to` says where.
const MAX_CHANGES_BYTES: usize = 8 << 20;

/// The largest request body taken, in bytes.
const MAX_BODY: usize = 64 << 10;

/// A refusal, as the API answers it.
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure { status, code, message: message.into() }
    }

    fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn bad(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    fn internal(error: impl std::fmt::Display) -> Failure {
        tracing::error!(%error, "an API request failed");
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the store could not be read")
    }

    fn response(self) -> Response<Body> {
        let mut response = json(self.status, &json!({"code": self.code, "message": self.message}));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<VersionError> for Failure {
    fn from(error: VersionError) -> Failure {
        match &error {
            VersionError::Exists { .. } => {
                Failure::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            VersionError::TooMany => {
                Failure::new(StatusCode::CONFLICT, "too_large", error.to_string())
            }
            VersionError::Missing { .. } | VersionError::NotKept { .. } => {
                Failure::not_found(error.to_string())
            }
            VersionError::Load(_) | VersionError::Stopped | VersionError::NotStored => {
                tracing::error!(%error, "a version request failed");
                let message = "the document is not available";
                Failure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            _ => Failure::internal(error),
        }
    }
}

/// What an API path asks for.
enum Route<'a> {
    Document,
    Text,
    Changes,
    Versions,
    Restore(&'a str),
}

/// The query parameters the API takes.
#[derive(Default)]
struct Params {
    revision: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
    token: Option<String>,
}

fn params(query: Option<&str>) -> Result<Params, Failure> {
    let mut params = Params::default();
    for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value.parse::<u64>().map_err(|_| Failure::bad(format!("{name} is a revision number")))
        };
        match name {
            "revision" => params.revision = Some(number()?),
            "from" => params.from = Some(number()?),
            "to" => params.to = Some(number()?),
            "token" if !value.is_empty() => params.token = Some(value.to_owned()),
            _ => {}
        }
    }
    Ok(params)
}

fn version_json(version: &VersionRecord) -> serde_json::Value {
    json!({
        "label": version.label,
        "revision": version.revision,
        "created_at": auth::rfc3339(version.created_at),
    })
}

impl App {
    /// Answers a request for `/api/docs/{rest}`.
    pub(crate) async fn api(
        self: &Arc<Self>,
        request: Request<Incoming>,
        rest: &str,
        peer: IpAddr,
    ) -> Response<Body> {
        if !self.gate.admit_api(peer) {
            self.metrics.refused("api_rate");
            let message = "too many requests from your address; slow down and try again";
            let mut response =
                Failure::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
        match self.try_api(request, rest).await {
            Ok(response) => response,
            Err(failure) => failure.response(),
        }
    }

    async fn try_api(
        self: &Arc<Self>,
        request: Request<Incoming>,
        rest: &str,
    ) -> Result<Response<Body>, Failure> {
        let (doc, route) = match rest.split('/').collect::<Vec<_>>().as_slice() {
            [doc] => (*doc, Route::Document),
            [doc, "text"] => (*doc, Route::Text),
            [doc, "changes"] => (*doc, Route::Changes),
            [doc, "versions"] => (*doc, Route::Versions),
            [doc, "versions", label, "restore"] => (*doc, Route::Restore(label)),
            _ => return Err(Failure::not_found("no such API path")),
        };
        if !valid_id(doc, 128) {
            return Err(Failure::bad("a document id is 1-128 of A-Z a-z 0-9 . _ -, not only dots"));
        }
        let writes = match (&route, request.method()) {
            (Route::Versions | Route::Restore(_), &Method::POST) => true,
            (Route::Restore(_), _) => return Err(not_allowed("POST")),
            (Route::Versions, &Method::GET | &Method::HEAD) => false,
            (Route::Versions, _) => return Err(not_allowed("GET, HEAD, POST")),
            (_, &Method::GET | &Method::HEAD) => false,
            _ => return Err(not_allowed("GET, HEAD")),
        };
        let params = params(request.uri().query())?;
        let grant = self.access(&request, params.token.as_deref(), doc).map_err(|denial| {
            self.metrics.refused("auth");
            let code = if denial.status == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "forbidden"
            };
            Failure::new(denial.status, code, denial.message)
        })?;
        if writes && grant.read_only {
            self.metrics.refused("auth");
            let message = "this token may read the document but not change it";
            return Err(Failure::new(StatusCode::FORBIDDEN, "forbidden", message));
        }
        match route {
            Route::Document => self.document(doc).await,
            Route::Text => self.text(doc, params.revision).await,
            Route::Changes => self.changes(doc, params.from, params.to).await,
            Route::Versions if writes => self.save(doc, request).await,
            Route::Versions => self.versions(doc).await,
            Route::Restore(label) => self.restore(doc, label).await,
        }
    }

    /// Runs a read of the store on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        doc: &str,
        read: impl FnOnce(&dyn tandem_store::Store, &str) -> Result<T, history::HistoryError>
        + Send
        + 'static,
    ) -> Result<T, Failure> {
        let (store, doc) = (Arc::clone(&self.store), doc.to_owned());
        match tokio::task::spawn_blocking(move || read(&*store, &doc)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::internal(error)),
            Err(error) => Err(Failure::internal(error)),
        }
    }

    /// `GET /api/docs/{doc}`: the document as stored now.
    async fn document(&self, doc: &str) -> Result<Response<Body>, Failure> {
        let found = self
            .read(doc, |store, doc| {
                let Some((first, last)) = history::ends(store, doc)? else { return Ok(None) };
                let text = history::text_at(store, doc, last.revision)?;
                Ok(Some((first, last, text)))
            })
            .await?;
        let Some((first, last, text)) = found else {
            return Err(Failure::not_found(format!("document {doc} has no changes")));
        };
        let (length, title) = match text {
            Some((text, title)) => (json!(text.chars().count()), json!(title)),
            None => (json!(null), json!(null)),
        };
        let time = |at: Option<u64>| at.map(auth::rfc3339);
        Ok(json(
            StatusCode::OK,
            &json!({
                "id": doc,
                "revision": last.revision,
                "length": length,
                "title": title,
                "created_at": time(first.at),
                "updated_at": time(last.at),
            }),
        ))
    }

    /// `GET /api/docs/{doc}/text?revision=R`: the text as it was at `R` (the last without).
    async fn text(&self, doc: &str, revision: Option<u64>) -> Result<Response<Body>, Failure> {
        let found = self
            .read(doc, move |store, doc| {
                let last = store.last(doc)?.map_or(0, |record| record.revision);
                let revision = revision.unwrap_or(last);
                if revision > last {
                    return Ok(Err(revision));
                }
                Ok(Ok((revision, history::text_at(store, doc, revision)?)))
            })
            .await?;
        match found {
            Err(revision) => {
                Err(Failure::not_found(format!("document {doc} has no revision {revision}")))
            }
            Ok((revision, None)) => Err(Failure::not_found(format!(
                "the text of revision {revision} of {doc} is no longer kept"
            ))),
            Ok((revision, Some((text, _)))) => {
                Ok(json(StatusCode::OK, &json!({"revision": revision, "text": text})))
            }
        }
    }

    /// `GET /api/docs/{doc}/changes?from=R1&to=R2`: the changes after `R1` up to `R2`, as they
    /// were broadcast.
    async fn changes(
        &self,
        doc: &str,
        from: Option<u64>,
        to: Option<u64>,
    ) -> Result<Response<Body>, Failure> {
        let from = from.unwrap_or(0);
        let changes = self
            .read(doc, move |store, doc| {
                let last = store.last(doc)?.map_or(0, |record| record.revision);
                let to = to.unwrap_or(last).min(last);
                if to.saturating_sub(from) > MAX_CHANGES {
                    return Ok(None);
                }
                let page = Page { count: MAX_CHANGES as usize, bytes: MAX_CHANGES_BYTES };
                let changes = history::changes(store, doc, from, to, page)?;
                // Cut short by bytes: up to the last one read.
                let to = changes.last().map_or(from.min(to), |last| last.revision);
                Ok(Some((changes, to)))
            })
            .await?;
        let Some((changes, to)) = changes else {
            let message = format!("at most {MAX_CHANGES} changes a request: narrow from and to");
            return Err(Failure::new(StatusCode::BAD_REQUEST, "too_large", message));
        };
        let changes: Vec<_> = changes.iter().map(|change| change.message()).collect();
        Ok(json(StatusCode::OK, &json!({ "changes": changes, "to": to })))
    }

    /// `GET /api/docs/{doc}/versions`: the named versions, oldest first.
    async fn versions(&self, doc: &str) -> Result<Response<Body>, Failure> {
        let versions = self.read(doc, history::versions).await?;
        let versions: Vec<_> = versions.iter().map(version_json).collect();
        Ok(json(StatusCode::OK, &json!({ "versions": versions })))
    }

    /// `POST /api/docs/{doc}/versions` with `{"label": L}`: saves the revision now as `L`.
    async fn save(
        self: &Arc<Self>,
        doc: &str,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, Failure> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Save {
            label: String,
        }
        // The body has as long as a request head (`--handshake-timeout`): a client that
        // trickles it cannot hold the connection.
        let body = Limited::new(request.into_body(), MAX_BODY).collect();
        let body = tokio::time::timeout(self.config.handshake_timeout, body)
            .await
            .map_err(|_| {
                let message = "the body did not arrive in time";
                Failure::new(StatusCode::REQUEST_TIMEOUT, "timeout", message)
            })?
            .map_err(|_| {
                Failure::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the body is too large")
            })?
            .to_bytes();
        let Save { label } = serde_json::from_slice(&body)
            .map_err(|error| Failure::bad(format!("expected {{\"label\": ...}}: {error}")))?;
        if !is_label(&label) {
            return Err(Failure::bad("a label is 1-64 of A-Z a-z 0-9 . _ -, not only dots"));
        }
        self.room_allowed(doc)?;
        let version = self.save_version(doc, Asker::Http, &label, None).await?;
        Ok(json(StatusCode::CREATED, &version_json(&version)))
    }

    /// `POST /api/docs/{doc}/versions/{label}/restore`: applies, as one new change, what
    /// turns the text into that version's.
    async fn restore(self: &Arc<Self>, doc: &str, label: &str) -> Result<Response<Body>, Failure> {
        if !is_label(label) {
            return Err(Failure::bad("a label is 1-64 of A-Z a-z 0-9 . _ -, not only dots"));
        }
        self.room_allowed(doc)?;
        let revision = self.restore_version(doc, Asker::Http, label).await?;
        Ok(json(StatusCode::OK, &json!({ "revision": revision })))
    }

    /// Refuses to load one more document past `max_documents`.
    fn room_allowed(&self, doc: &str) -> Result<(), Failure> {
        if self.may_load(doc) {
            return Ok(());
        }
        self.metrics.refused("documents");
        let message = "the server has as many documents open as it takes; try again later";
        Err(Failure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message))
    }
}

fn not_allowed(allow: &'static str) -> Failure {
    let message = format!("this path takes {allow}");
    Failure::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message)
}
