//! HTTP/2 frames written by hand over an mTLS connection, for a peer that breaks what the
//! server advertises: a real client (hyper, tonic) never opens more streams than the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` — it queues the call instead — so only a hand-written
//! client shows what the server does to one that does (RFC 9113 §5.1.2: `RST_STREAM`
//! `REFUSED_STREAM`).
//!
//! Just enough of the protocol: the preface, `HEADERS` for a gRPC call (HPACK literals, no
//! Huffman, no dynamic table), `DATA`, `RST_STREAM`, acknowledging the server's `SETTINGS`, and
//! the frames the server sends, by type and stream.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;

use crate::raw_tls::{ClientCert, connect};

/// `DATA`.
pub const DATA: u8 = 0x0;
/// `HEADERS`.
pub const HEADERS: u8 = 0x1;
/// `RST_STREAM`.
pub const RST_STREAM: u8 = 0x3;
/// `SETTINGS`.
pub const SETTINGS: u8 = 0x4;
/// `GOAWAY`.
pub const GOAWAY: u8 = 0x7;
/// The `REFUSED_STREAM` error code.
pub const REFUSED_STREAM: u32 = 0x7;
/// The `CANCEL` error code.
pub const CANCEL: u32 = 0x8;
/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// A frame the server sent.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Its type (`HEADERS`, `RST_STREAM`, …).
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream (0: the connection).
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a `RST_STREAM` or `GOAWAY`.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let bytes = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// An HTTP/2 connection whose frames the test writes itself.
pub struct RawH2 {
    writer: WriteHalf<TlsStream<TcpStream>>,
    frames: mpsc::UnboundedReceiver<Frame>,
    next_stream: u32,
    /// What the server's first `SETTINGS` said of `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_concurrent_streams: Option<u32>,
}

impl RawH2 {
    /// Completes the TLS handshake to `addr` as `client`, sends the connection preface and an
    /// empty `SETTINGS`, and waits for the server's `SETTINGS` (acknowledged).
    pub async fn connect(addr: std::net::SocketAddr, ca_pem: &[u8], client: &ClientCert) -> RawH2 {
        let (reader, mut writer) = tokio::io::split(connect(addr, ca_pem, client).await);
        writer
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .expect("the HTTP/2 preface");
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(read_frames(reader, tx));
        let mut h2 = RawH2 {
            writer,
            frames,
            next_stream: 1,
            max_concurrent_streams: None,
        };
        let settings = h2
            .wait_for(Duration::from_secs(10), |f| {
                f.kind == SETTINGS && f.flags & 1 == 0
            })
            .await
            .expect("the server's SETTINGS");
        h2.max_concurrent_streams = settings
            .payload
            .chunks_exact(6)
            .find(|s| u16::from_be_bytes([s[0], s[1]]) == MAX_CONCURRENT_STREAMS)
            .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]));
        h2
    }

    async fn write_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let length = u32::try_from(payload.len())
            .expect("a small frame")
            .to_be_bytes();
        let mut frame = vec![length[1], length[2], length[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        self.writer.write_all(&frame).await.expect("write a frame");
    }

    /// Opens a stream calling the gRPC method at `path` (its `HEADERS`, without `END_STREAM`:
    /// the request message is still to come, so the server holds the stream open), and answers
    /// its id.
    pub async fn open(&mut self, path: &str) -> u32 {
        let mut block = vec![0x83, 0x87]; // :method POST, :scheme https (static table)
        block.push(0x04); // :path, name from the static table
        literal(&mut block, path);
        block.push(0x01); // :authority
        literal(&mut block, "localhost");
        block.extend_from_slice(&[0x0f, 0x10]); // content-type (static index 31)
        literal(&mut block, "application/grpc");
        block.push(0x00); // a new name
        literal(&mut block, "te");
        literal(&mut block, "trailers");
        let stream = self.next_stream;
        self.next_stream += 2;
        self.write_frame(HEADERS, 0x4, stream, &block).await; // END_HEADERS
        stream
    }

    /// Sends `stream`'s request message (`message`, gRPC-framed) and ends it.
    pub async fn finish(&mut self, stream: u32, message: &[u8]) {
        let mut data = vec![0];
        data.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        data.extend_from_slice(message);
        self.write_frame(DATA, 0x1, stream, &data).await; // END_STREAM
    }

    /// Resets `stream` with `CANCEL`.
    pub async fn cancel(&mut self, stream: u32) {
        self.write_frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes())
            .await;
    }

    /// The next frame the server sent within `within` (acknowledging its `SETTINGS`), or
    /// `None` when none came or the connection closed.
    pub async fn next_frame(&mut self, within: Duration) -> Option<Frame> {
        let frame = tokio::time::timeout(within, self.frames.recv())
            .await
            .ok()??;
        if frame.kind == SETTINGS && frame.flags & 1 == 0 {
            self.write_frame(SETTINGS, 0x1, 0, &[]).await;
        }
        Some(frame)
    }

    /// The first frame within `within` for which `wanted` holds, skipping the others.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Frame) -> bool,
    ) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_frame(left).await?;
            if wanted(&frame) {
                return Some(frame);
            }
        }
    }

    /// Every frame the server sends within `within`.
    pub async fn frames_for(&mut self, within: Duration) -> Vec<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame(left).await {
                Some(frame) => frames.push(frame),
                None => return frames,
            }
        }
    }
}

/// An HPACK string literal, without Huffman coding (every header here is shorter than 127).
fn literal(block: &mut Vec<u8>, value: &str) {
    block.push(u8::try_from(value.len()).expect("a short header value"));
    block.extend_from_slice(value.as_bytes());
}

/// Forwards the server's frames until the connection ends.
async fn read_frames(mut reader: ReadHalf<TlsStream<TcpStream>>, tx: mpsc::UnboundedSender<Frame>) {
    let mut head = [0u8; 9];
    while reader.read_exact(&mut head).await.is_ok() {
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]);
        let mut payload = vec![0; usize::try_from(length).expect("a frame length")];
        if reader.read_exact(&mut payload).await.is_err() {
            return;
        }
        let frame = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]),
            payload,
        };
        if tx.send(frame).is_err() {
            return;
        }
    }
}
