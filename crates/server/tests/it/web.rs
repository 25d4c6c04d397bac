//! The embedded pages and client: every file of `web/` and `clients/js/src/` is served as it is,
//! with its content type and cache headers, from the binary alone.

use std::path::{Path, PathBuf};

use hyper::{Method, StatusCode, header};

use crate::support::TestServer;

fn project(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(folder)
}

/// The files of `folder`, by name, with their text.
fn files(folder: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(project(folder))
        .expect("the folder exists")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).expect("a name").to_owned();
            (name, std::fs::read_to_string(&path).expect("a text file"))
        })
        .collect();
    files.sort();
    files
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("a file of an unexpected kind: {other:?}"),
    }
}

#[tokio::test]
async fn every_file_of_the_pages_and_the_client_is_served_as_it_is() {
    let server = TestServer::start().await;
    let mut served = 0;
    for (folder, prefix) in [("web", "/app/"), ("clients/js/src", "/js/")] {
        for (name, text) in files(folder) {
            let path = match name.as_str() {
                "index.html" => "/".to_owned(),
                "editor.html" => "/d/notes".to_owned(),
                _ => format!("{prefix}{name}"),
            };
            let (status, headers, body) = server.get_with(&path, &[]).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body == text, "{path} is {folder}/{name}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type(&name), "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            // The client's modules may be imported by pages of any origin; the pages' may not.
            let cors = headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().ok());
            assert_eq!(cors, (prefix == "/js/").then_some(Some("*")), "{path}");
            served += 1;
        }
    }
    assert!(served >= 12, "only {served} files");
    server.shutdown().await;
}

#[tokio::test]
async fn a_current_copy_is_revalidated_with_a_304() {
    let server = TestServer::start().await;
    let (_, headers, body) = server.get_with("/js/tandem.js", &[]).await;
    assert!(body.contains("TandemClient"));
    let etag = headers[header::ETAG].to_str().expect("ascii").to_owned();
    let (status, headers, body) =
        server.get_with("/js/tandem.js", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_eq!(headers[header::ETAG], etag.as_str());
    let (status, _, _) = server.get_with("/js/tandem.js", &[("if-none-match", "\"old\"")]).await;
    assert_eq!(status, StatusCode::OK, "another version is sent whole");
    // Each file has its own tag.
    let (_, other, _) = server.get_with("/js/ot.js", &[]).await;
    assert_ne!(other[header::ETAG], etag.as_str());
    // If-None-Match compares weakly.
    let weak = format!("W/{etag}");
    let (status, _, _) = server.get_with("/js/tandem.js", &[("if-none-match", &weak)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    server.shutdown().await;
}

#[tokio::test]
async fn head_is_get_without_the_body_and_other_methods_are_refused() {
    let server = TestServer::start().await;
    let (status, headers, body) = server.request(Method::HEAD, "/app/editor.js", &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    let (_, get, _) = server.get_with("/app/editor.js", &[]).await;
    assert_eq!(headers[header::ETAG], get[header::ETAG]);
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let (status, headers, _) = server.request(method.clone(), "/d/notes", &[]).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(headers[header::ALLOW], "GET, HEAD");
    }
    assert_eq!(server.request(Method::HEAD, "/ws/notes", &[]).await.0, StatusCode::BAD_REQUEST);
    server.shutdown().await;
}

#[tokio::test]
async fn the_editor_page_is_served_for_any_valid_document_and_nothing_else() {
    let server = TestServer::start().await;
    let (_, editor) = server.get("/d/notes").await;
    assert!(editor.contains(r#"data-tandem="editor""#));
    assert_eq!(server.get("/d/Plans-2026.v1_final").await, (StatusCode::OK, editor));
    let long = format!("/d/{}", "a".repeat(129));
    for path in ["/d/", "/d/has%20space", "/d/a/b", "/d/.", "/d/..", "/ws/..", &long] {
        assert_eq!(server.get(path).await.0, StatusCode::BAD_REQUEST, "{path}");
    }
    for path in ["/js/", "/js/missing.js", "/js/../Cargo.toml", "/app/", "/index.html"] {
        assert_eq!(server.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    server.shutdown().await;
}
