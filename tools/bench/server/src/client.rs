//! What the load script needs bought before a run, done the way a client
//! does it: fetch a 402 from the running server, answer its challenge with
//! a credential for [`InstantTestRail`](crate::InstantTestRail), and (for a
//! session) pay once and keep the `Payment-Session` id.
//!
//! HTTP/1.1 over one keep-alive loopback connection; just enough of the
//! protocol for the bench servers (`Content-Length` bodies).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use mpp_rocket::runtime::wire::{Challenge, Credential, SessionInfo};
use serde_json::{Map, Value};

/// One answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header (`name` in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive connection to one server.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    reader: BufReader<TcpStream>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl Connection {
    /// Connects to `addr` (`127.0.0.1:8091`).
    pub fn open(addr: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr: addr.to_owned(),
            reader: BufReader::new(stream),
        })
    }

    /// `GET path`, with an `Authorization` header when given.
    pub fn get(&mut self, path: &str, authorization: Option<&str>) -> io::Result<Reply> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(value) = authorization {
            request.push_str("Authorization: ");
            request.push_str(value);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.read_reply()
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("not an HTTP status line: {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("not a header line: {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if reply.header("transfer-encoding").is_some() {
            return Err(invalid(
                "chunked bodies are not supported by this client".into(),
            ));
        }
        let length: usize = match reply.header("content-length") {
            Some(n) => n
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {n:?}")))?,
            None => 0,
        };
        reply.body = vec![0; length];
        self.reader.read_exact(&mut reply.body)?;
        Ok(reply)
    }
}

/// The `Authorization` value paying the challenge of a 402 with the instant
/// test rail's proof.
pub fn credential_for(reply: &Reply) -> io::Result<String> {
    credential_with_proof(reply, crate::PROOF)
}

/// The `Authorization` value answering the challenge of a 402 with
/// `{"proof": proof}`.
pub fn credential_with_proof(reply: &Reply, proof: &str) -> io::Result<String> {
    if reply.status != 402 {
        return Err(invalid(format!("expected a 402, got {}", reply.status)));
    }
    let header = reply
        .header("www-authenticate")
        .ok_or_else(|| invalid("a 402 without WWW-Authenticate".into()))?;
    let challenge =
        Challenge::parse(header).map_err(|e| invalid(format!("unparsable challenge: {e}")))?;
    let mut payload = Map::new();
    payload.insert("proof".into(), Value::from(proof));
    Ok(Credential {
        challenge,
        payload,
        source: None,
    }
    .to_header())
}

/// Fetches `count` fresh 402s from `path` and writes one paying
/// `Authorization` value per line. Each pays exactly once.
pub fn mint_credentials(
    addr: &str,
    path: &str,
    count: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut connection = Connection::open(addr)?;
    for _ in 0..count {
        let reply = connection.get(path, None)?;
        writeln!(out, "{}", credential_for(&reply)?)?;
    }
    out.flush()
}

/// Pays `path` (a metered route) once and returns the session it bought.
pub fn buy_session(addr: &str, path: &str) -> io::Result<SessionInfo> {
    let mut connection = Connection::open(addr)?;
    let challenge = connection.get(path, None)?;
    let paid = connection.get(path, Some(&credential_for(&challenge)?))?;
    if paid.status != 200 {
        return Err(invalid(format!(
            "paying {path} answered {}: {}",
            paid.status,
            String::from_utf8_lossy(&paid.body)
        )));
    }
    let header = paid
        .header("payment-session")
        .ok_or_else(|| invalid(format!("{path} sold no session (no Payment-Session)")))?;
    SessionInfo::parse(header).map_err(|e| invalid(format!("bad Payment-Session: {e}")))
}
