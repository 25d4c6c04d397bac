//! The web pages and the JavaScript client, embedded in the binary, so that `cargo run` on a
//! machine without Node serves them.
//!
//! - `/` is the landing page and `/d/{doc}` the editor page of one document (`web/`);
//! - `/app/{file}` the pages' scripts, style sheet and icon (`web/`);
//! - `/js/{file}` the client library (`clients/js/src/`), at a stable path that applications
//!   import it from, with CORS so that pages of other origins can.
//!
//! Every file goes out with its content type, `Cache-Control: no-cache` and an `ETag`, so a
//! browser revalidates it cheaply (a 304) and never keeps running an old client against a newer
//! server.

/// A file of `web/` or `clients/js/src/`, as compiled into the binary.
macro_rules! embed {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path))
    };
}

/// The editor page, served for every valid `/d/{doc}`.
pub(crate) const EDITOR: Asset = Asset::new("editor.html", embed!("web/editor.html"));

/// The landing page at `/`.
pub(crate) const LANDING: Asset = Asset::new("index.html", embed!("web/index.html"));

/// `/app/{file}`: what the pages load.
const APP: &[Asset] = &[
    Asset::new("editor.js", embed!("web/editor.js")),
    Asset::new("history.js", embed!("web/history.js")),
    Asset::new("landing.js", embed!("web/landing.js")),
    Asset::new("style.css", embed!("web/style.css")),
    Asset::new("favicon.svg", embed!("web/favicon.svg")),
];

/// `/js/{file}`: the client's modules; `tandem.js` imports the others by relative path.
const CLIENT: &[Asset] = &[
    Asset::new("tandem.js", embed!("clients/js/src/tandem.js")),
    Asset::new("client.js", embed!("clients/js/src/client.js")),
    Asset::new("session.js", embed!("clients/js/src/session.js")),
    Asset::new("ot.js", embed!("clients/js/src/ot.js")),
    Asset::new("text.js", embed!("clients/js/src/text.js")),
    Asset::new("undo.js", embed!("clients/js/src/undo.js")),
    Asset::new("textarea.js", embed!("clients/js/src/textarea.js")),
];

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asset {
    pub(crate) name: &'static str,
    pub(crate) body: &'static str,
}

impl Asset {
    const fn new(name: &'static str, body: &'static str) -> Asset {
        Asset { name, body }
    }

    /// The `Content-Type` for the file's extension.
    pub(crate) fn content_type(&self) -> &'static str {
        match self.name.rsplit_once('.').map(|(_, extension)| extension) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "application/octet-stream",
        }
    }

    /// A strong validator for the file: FNV-1a of its bytes, which change with every release
    /// that changes the file.
    pub(crate) fn etag(&self) -> String {
        let hash = self.body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("\"{hash:016x}\"")
    }
}

/// Where a request for a static file goes.
pub(crate) enum Static {
    /// A page of ours (HTML).
    Page(Asset),
    /// A script, style sheet or icon of the pages.
    App(Asset),
    /// A module of the client library, which other origins may import.
    Client(Asset),
}

/// The static file at `path`, if there is one.
pub(crate) fn lookup(path: &str) -> Option<Static> {
    if path == "/" {
        return Some(Static::Page(LANDING));
    }
    let find = |assets: &[Asset], name: &str| assets.iter().copied().find(|a| a.name == name);
    if let Some(name) = path.strip_prefix("/app/") {
        return find(APP, name).map(Static::App);
    }
    if let Some(name) = path.strip_prefix("/js/") {
        return find(CLIENT, name).map(Static::Client);
    }
    None
}
