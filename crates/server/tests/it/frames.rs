//! WebSocket framing over a raw TCP socket, as Autobahn's important cases check it: each way of
//! breaking RFC 6455 is answered with a close frame carrying the code the RFC asks for, and the
//! document and the other clients carry on.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::{TestServer, within};

/// A raw WebSocket connection: the handshake done by hand, frames written byte by byte.
struct Raw {
    stream: TcpStream,
    /// Bytes read past the handshake's response.
    read: Vec<u8>,
}

impl Raw {
    async fn connect(server: &TestServer, doc: &str) -> Raw {
        let mut stream = TcpStream::connect(server.addr()).await.expect("connects");
        let request = format!(
            "GET /ws/{doc} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("writes");
        let mut read = Vec::new();
        let end = loop {
            let mut chunk = [0; 4096];
            let n = within(stream.read(&mut chunk)).await.expect("reads");
            assert!(n > 0, "the server closed during the handshake");
            read.extend_from_slice(&chunk[..n]);
            if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        assert!(read.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&read));
        let read = read.split_off(end);
        Raw { stream, read }
    }

    /// Writes one frame: `first` is FIN, RSV and opcode; `masked` whether to mask it as a
    /// client must.
    async fn frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mut bytes = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => bytes.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                bytes.push(mask_bit | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x12, 0x34, 0x56, 0x78];
            bytes.extend_from_slice(&key);
            bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            bytes.extend_from_slice(payload);
        }
        // The server may close as soon as it has read enough; a failed write is then fine.
        let _ = self.stream.write_all(&bytes).await;
    }

    /// Reads frames until a close frame, and returns its status code (`None` for a close
    /// frame without one); panics if the connection ends without a close frame.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            if let Some((opcode, payload, used)) = parse(&self.read) {
                self.read.drain(..used);
                if opcode == 0x8 {
                    return (payload.len() >= 2)
                        .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                }
                continue;
            }
            let mut chunk = [0; 4096];
            let n = within(self.stream.read(&mut chunk)).await.unwrap_or(0);
            assert!(n > 0, "the connection ended without a close frame");
            self.read.extend_from_slice(&chunk[..n]);
        }
    }
}

/// One unmasked server frame from the start of `bytes`: its opcode, payload and length.
fn parse(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)?);
    let (len, start) = match second & 0x7f {
        126 => (u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = bytes.get(start..start + len)?.to_vec();
    Some((first & 0x0f, payload, start + len))
}

const TEXT: u8 = 0x81;

/// A frame to write: FIN, RSV and opcode; the payload; whether to mask it.
type RawFrame = (u8, Vec<u8>, bool);

#[tokio::test]
async fn each_protocol_violation_gets_its_close_code_and_the_document_carries_on() {
    let server = TestServer::start_with(|config| config.transport.max_message_bytes = 1024).await;
    let mut ada = server.connect("notes").await;
    ada.act(|c| c.insert(0, "kept").expect("fits")).await;
    ada.sync().await;
    let valid = br#"{"type":"ping"}"#;
    let cases: [(&str, Vec<RawFrame>, u16); 10] = [
        ("invalid UTF-8 in a text frame", vec![(TEXT, vec![0x7b, 0xff, 0xfe, 0x7d], true)], 1007),
        (
            "invalid UTF-8 across fragments",
            vec![(0x01, b"\"\xe2\x82".to_vec(), true), (0x80, b"\x28\"".to_vec(), true)],
            1007,
        ),
        ("an unmasked frame", vec![(TEXT, valid.to_vec(), false)], 1002),
        ("a reserved bit", vec![(TEXT | 0x40, valid.to_vec(), true)], 1002),
        ("a control frame over 125 bytes", vec![(0x89, vec![b'p'; 126], true)], 1002),
        ("a fragmented control frame", vec![(0x09, b"p".to_vec(), true)], 1002),
        ("an unknown data opcode", vec![(0x83, valid.to_vec(), true)], 1002),
        ("an unknown control opcode", vec![(0x8b, valid.to_vec(), true)], 1002),
        ("a continuation with nothing to continue", vec![(0x80, valid.to_vec(), true)], 1002),
        ("a message over the size limit", vec![(TEXT, vec![b' '; 2000], true)], 1009),
    ];
    for (what, frames, expected) in cases {
        let mut raw = Raw::connect(&server, "notes").await;
        for (first, payload, masked) in frames {
            raw.frame(first, &payload, masked).await;
        }
        assert_eq!(raw.close_code().await, Some(expected), "{what}");
        ada.until(|message| matches!(message, tandem_protocol::ServerMessage::Leave { .. })).await;
    }
    // A well-behaved raw client gets its pong, and the document is as it was.
    let mut raw = Raw::connect(&server, "notes").await;
    raw.frame(TEXT, br#"{"type":"ping","id":1}"#, true).await;
    raw.frame(0x88, &1000u16.to_be_bytes(), true).await;
    assert_eq!(raw.close_code().await, Some(1000));
    ada.act(|c| c.insert(4, "!").expect("fits")).await;
    ada.sync().await;
    assert_eq!(server.document("notes").await, ("kept!".to_owned(), 2));
    server.shutdown().await;
}
