//! `--log-format json`: the binary writes one JSON object a line, and a connection's lines carry
//! its document and client.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use crate::support::Client;

#[tokio::test]
async fn json_logs_carry_the_document_and_client_of_each_connection() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["--bind", "127.0.0.1:0", "--in-memory", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped");
    let (lines, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let next = async |receiver: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        let line = crate::support::within(receiver.recv()).await.expect("a log line");
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"))
    };
    let addr = loop {
        let line = next(&mut receiver).await;
        let message = line["fields"]["message"].as_str().unwrap_or_default().to_owned();
        if let Some(addr) = message.strip_prefix("listening on ") {
            break addr.parse().expect("an address");
        }
    };
    let client = Client::connect(addr, "/ws/logged-doc").await;
    let id = client.id();
    let connected = loop {
        let line = next(&mut receiver).await;
        if line["fields"]["message"] == "connected" {
            break line;
        }
    };
    assert_eq!(connected["span"]["doc"], "logged-doc", "{connected}");
    assert_eq!(connected["span"]["client"], id.as_str(), "{connected}");
    assert_eq!(connected["level"], "INFO");
    drop(client);
    let _ = child.kill();
    let _ = child.wait();
}
