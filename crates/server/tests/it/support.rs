//! The harness: a server on a free port, and clients that speak the protocol through the
//! reference thin client.

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, body::Bytes};
use hyper_util::rt::TokioIo;
use tandem_protocol::{ClientMessage, ServerMessage, ThinClient};
use tandem_server::{Config, Server};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue},
        protocol::frame::coding::CloseCode,
    },
};

/// Every wait ends well within this; it guards against hangs and never synchronises anything.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) struct TestServer {
    server: Server,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::try_start_with(adjust).await.expect("server starts")
    }

    /// As `start_with`, with the error if the server cannot start.
    pub(crate) async fn try_start_with(
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<TestServer> {
        // The tests drive clients far faster than people type: the message rate is the
        // limits test's business.
        let fast = std::num::NonZeroU32::new(1_000_000).expect("not zero");
        let mut config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            message_rate: fast,
            message_burst: fast,
            ..Config::default()
        };
        adjust(&mut config);
        // TANDEM_TEST_LOG=info (say) shows the servers' logs, for a test being looked into.
        if let Ok(filter) = std::env::var("TANDEM_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        Ok(TestServer { server: Server::start(config).await? })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Connects to `doc` and reads the welcome.
    pub(crate) async fn connect(&self, doc: &str) -> Client {
        Client::connect(self.addr(), &format!("/ws/{doc}")).await
    }

    /// A GET over real HTTP: status and body.
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, String) {
        let (status, _, body) = self.get_with(path, &[]).await;
        (status, body)
    }

    /// A GET over real HTTP with extra request headers: status, response headers and body.
    pub(crate) async fn get_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, hyper::HeaderMap, String) {
        self.request(hyper::Method::GET, path, headers).await
    }

    /// A request with any method; the response's status, headers and body.
    pub(crate) async fn request(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, hyper::HeaderMap, String) {
        self.request_with_body(method, path, headers, "").await
    }

    /// A request with a body; the response's status, headers and body.
    pub(crate) async fn request_with_body(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, hyper::HeaderMap, String) {
        let stream = TcpStream::connect(self.addr()).await.expect("connects");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http handshake");
        tokio::spawn(connection);
        let mut request = Request::builder().method(method).uri(path).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
        let response = within(sender.send_request(request)).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = within(body.collect()).await.expect("body").to_bytes();
        (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// The document as the server holds it now, read from a fresh client's welcome.
    pub(crate) async fn document(&self, doc: &str) -> (String, u64) {
        let client = self.connect(doc).await;
        (client.thin.text(), client.thin.revision())
    }

    /// The document as the server holds it now, read with a token.
    pub(crate) async fn document_with(&self, doc: &str, token: &str) -> (String, u64) {
        let client = Client::connect(self.addr(), &format!("/ws/{doc}?token={token}")).await;
        (client.thin.text(), client.thin.revision())
    }

    pub(crate) async fn shutdown(self) {
        within(self.server.shutdown()).await;
    }
}

/// Awaits `future`, failing the test if it hangs.
pub(crate) async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future).await.expect("timed out waiting for an event")
}

/// A TCP connection to `to` from the loopback address `from` (any of 127.0.0.0/8), as if from
/// another machine.
pub(crate) async fn tcp_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind(SocketAddr::from((from, 0))).expect("binds to a loopback address");
    within(socket.connect(to)).await.expect("connects")
}

pub(crate) struct Client {
    pub(crate) socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub(crate) thin: ThinClient,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr, path: &str) -> Client {
        let (mut socket, _) =
            within(tokio_tungstenite::connect_async(format!("ws://{addr}{path}")))
                .await
                .expect("websocket connects");
        let welcome = next_message(&mut socket).await;
        Client { socket, thin: ThinClient::new(welcome).expect("the first message is a welcome") }
    }

    /// Connects from the loopback address `from` (any of 127.0.0.0/8), as another machine.
    pub(crate) async fn connect_from(from: [u8; 4], addr: SocketAddr, path: &str) -> Client {
        let stream = tcp_from(from, addr).await;
        let url = format!("ws://{addr}{path}");
        let (mut socket, _) =
            within(tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)))
                .await
                .expect("websocket connects");
        let welcome = next_message(&mut socket).await;
        Client { socket, thin: ThinClient::new(welcome).expect("the first message is a welcome") }
    }

    pub(crate) fn id(&self) -> String {
        self.thin.client_id().to_owned()
    }

    /// Sends a raw text frame.
    pub(crate) async fn send_text(&mut self, text: &str) {
        within(self.socket.send(Message::text(text))).await.expect("sends");
    }

    pub(crate) async fn send(&mut self, message: &ClientMessage) {
        self.send_text(&serde_json::to_string(message).expect("serializes")).await;
    }

    /// Lets the thin client act and sends what it produced.
    pub(crate) async fn act(
        &mut self,
        action: impl FnOnce(&mut ThinClient) -> Option<ClientMessage>,
    ) {
        if let Some(message) = action(&mut self.thin) {
            self.send(&message).await;
        }
    }

    /// The next message, without feeding it to the thin client.
    pub(crate) async fn recv(&mut self) -> ServerMessage {
        next_message(&mut self.socket).await
    }

    /// Receives one message, feeds it to the thin client and sends what it answers.
    pub(crate) async fn pump(&mut self) -> ServerMessage {
        let message = self.recv().await;
        if let Some(next) = self.thin.receive(message.clone()).expect("the thin client accepts it")
        {
            self.send(&next).await;
        }
        message
    }

    /// Sends `message`; false if the connection is gone.
    pub(crate) async fn try_send(&mut self, message: &ClientMessage) -> bool {
        let text = serde_json::to_string(message).expect("serializes");
        within(self.socket.send(Message::text(text))).await.is_ok()
    }

    /// The next message, or `None` once the connection is gone.
    pub(crate) async fn try_recv(&mut self) -> Option<ServerMessage> {
        loop {
            match within(self.socket.next()).await {
                Some(Ok(Message::Text(text))) => {
                    return Some(
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
                    );
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Pumps the messages that have arrived already, without waiting for more.
    pub(crate) async fn pump_available(&mut self) {
        use futures_util::FutureExt;
        while let Some(Some(Ok(Message::Text(text)))) = self.socket.next().now_or_never() {
            let message =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"));
            if let Some(next) = self.thin.receive(message).expect("the thin client accepts it") {
                self.send(&next).await;
            }
        }
    }

    /// Receives until a message is `wanted`, without feeding the thin client.
    pub(crate) async fn until_raw(
        &mut self,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> ServerMessage {
        loop {
            let message = self.recv().await;
            if wanted(&message) {
                return message;
            }
        }
    }

    /// The first `ack` or `error` this client receives, read raw (for a frame sent past the thin
    /// client).
    pub(crate) async fn answer(&mut self) -> ServerMessage {
        self.until_raw(|m| matches!(m, ServerMessage::Ack { .. } | ServerMessage::Error { .. }))
            .await
    }

    /// Pumps until a message matches `wanted`, and returns it.
    pub(crate) async fn until(&mut self, wanted: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let message = self.pump().await;
            if wanted(&message) {
                return message;
            }
        }
    }

    /// Pumps until every local change is acknowledged.
    pub(crate) async fn sync(&mut self) {
        while !self.thin.is_synced() {
            self.pump().await;
        }
    }

    /// Pumps until the thin client is at `revision`.
    pub(crate) async fn catch_up(&mut self, revision: u64) {
        while self.thin.revision() < revision {
            self.pump().await;
        }
    }

    /// Waits for the server's close frame and returns its code.
    pub(crate) async fn close_code(&mut self) -> CloseCode {
        loop {
            match within(self.socket.next()).await {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

async fn next_message(socket: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> ServerMessage {
    // One deadline for the message, however many pings come before it.
    within(async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text)
                        .unwrap_or_else(|error| panic!("{error}: {text}"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    })
    .await
}

/// A fresh folder under the system temp dir, removed when dropped.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        let unique = format!("tandem-it-{name}-{}-{}", std::process::id(), rand::random::<u64>());
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Client {
    /// Drops the connection, whatever is in flight, and reconnects from the client's revision
    /// (retrying while the server still holds the old connection), then resends what is due.
    pub(crate) async fn reconnect(self, addr: SocketAddr) -> Client {
        self.reconnect_with(addr, "").await
    }

    /// As `reconnect`, with `query` (such as `&token=...`) added to the resume path.
    pub(crate) async fn reconnect_with(self, addr: SocketAddr, query: &str) -> Client {
        let Client { socket, thin } = self;
        drop(socket);
        Client::resume(addr, thin, query).await
    }

    /// Connects `thin`, a client whose connection is gone, again from its revision, and
    /// resends what is due.
    pub(crate) async fn resume(addr: SocketAddr, mut thin: ThinClient, query: &str) -> Client {
        let url = format!("ws://{addr}{}{query}", thin.resume_path());
        let mut socket = loop {
            if let Ok((socket, _)) = within(tokio_tungstenite::connect_async(&url)).await {
                break socket;
            }
        };
        let first = next_message(&mut socket).await;
        let next = thin.reconnected(first).expect("resumes");
        let mut client = Client { socket, thin };
        if let Some(message) = next {
            client.send(&message).await;
        }
        client
    }
}

/// The HTTP status of a WebSocket upgrade of `path` on the server at `addr`: 101 if it opens
/// (and then closes at once).
pub(crate) async fn upgrade_status_at(addr: SocketAddr, path: &str) -> u16 {
    upgrade_status_of(addr, path, &[]).await
}

/// The HTTP status of a WebSocket upgrade of `path` with `headers`: 101 if it opens.
pub(crate) async fn upgrade_status(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> u16 {
    upgrade_status_of(server.addr(), path, headers).await
}

async fn upgrade_status_of(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = format!("ws://{addr}{path}").into_client_request().expect("a request");
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a name");
        request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a value"));
    }
    match within(tokio_tungstenite::connect_async(request)).await {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP answer, got {other}"),
    }
}

/// Starts the `tandem` binary on a free port with `args`, and returns it with the address it
/// logged.
pub(crate) fn spawn_binary(args: &[&str]) -> (std::process::Child, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the tandem binary starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs before it exits").expect("reads");
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr: String =
                rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
            break addr.parse().expect("an address");
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}
