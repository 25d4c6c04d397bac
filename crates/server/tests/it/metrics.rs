//! `/metrics` counts what happened, in the Prometheus text format.

use std::num::NonZeroU32;

use hyper::{StatusCode, header};

use crate::support::TestServer;

/// The value of the sample named exactly `name` (labels included), if the page has it.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_messages_errors_refusals_and_commits() {
    let server = TestServer::start_with(|config| {
        config.message_rate = NonZeroU32::new(1).expect("not zero");
        config.message_burst = NonZeroU32::new(4).expect("not zero");
    })
    .await;
    let mut ada = server.connect("notes").await;
    let mut bob = server.connect("notes").await;
    ada.recv().await; // Bob's arrival.
    ada.act(|c| c.insert(0, "hi").expect("fits")).await;
    ada.sync().await;
    bob.catch_up(1).await;
    ada.send_text(r#"{"type":"teleport"}"#).await;
    ada.recv().await;
    // Over the burst of 4 (the insert and the teleport took two): refused as rate_limited.
    for _ in 0..6 {
        ada.send_text(r#"{"type":"ping"}"#).await;
    }
    let mut rate_limited = 0;
    for _ in 0..6 {
        if matches!(ada.recv().await, tandem_protocol::ServerMessage::Error { .. }) {
            rate_limited += 1;
        }
    }
    let (status, headers, page) = server.get_with("/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/openmetrics-text"))
    );
    let value = |name: &str| sample(&page, name).unwrap_or_else(|| panic!("no {name} in\n{page}"));
    assert_eq!(value("tandem_connections"), 2.0);
    assert_eq!(value("tandem_documents"), 1.0);
    assert_eq!(value(r#"tandem_messages_received_total{type="insert"}"#), 1.0);
    assert_eq!(value(r#"tandem_messages_received_total{type="invalid"}"#), 1.0);
    assert!(value(r#"tandem_messages_received_total{type="ping"}"#) >= 1.0);
    assert_eq!(value(r#"tandem_messages_sent_total{type="welcome"}"#), 2.0);
    assert_eq!(value(r#"tandem_messages_sent_total{type="insert"}"#), 1.0, "one broadcast, to bob");
    assert_eq!(value(r#"tandem_messages_sent_total{type="ack"}"#), 1.0);
    assert_eq!(value(r#"tandem_errors_total{code="invalid_message"}"#), 1.0);
    assert!(rate_limited >= 1);
    assert_eq!(value(r#"tandem_errors_total{code="rate_limited"}"#), f64::from(rate_limited));
    assert_eq!(value(r#"tandem_refusals_total{reason="rate"}"#), f64::from(rate_limited));
    assert!(value("tandem_store_commit_seconds_count") >= 1.0);
    assert!(value("tandem_apply_seconds_count") >= 3.0);
    assert_eq!(value("tandem_outbox_bytes"), 0.0);
    server.shutdown().await;
}
