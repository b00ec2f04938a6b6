//! A minimal HTTP/1.1 client over one kept-alive connection, for the load programs. They measure
//! the service, so the client does as little as it can: no pool, no TLS, no allocation it can
//! avoid beyond the body it reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    token: String,
}

/// What came back: the status, and the body when the caller asked to keep it.
pub struct Answer {
    pub status: u16,
    #[allow(dead_code)] // write_load reads only the status
    pub body: Vec<u8>,
}

impl Conn {
    pub fn open(addr: &str, token: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            token: token.to_string(),
        })
    }

    /// Sends one request and reads the whole answer (Content-Length bodies only: the service
    /// streams nothing the load programs ask for).
    pub fn call(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<Answer> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: load\r\nX-Auth-Token: {}\r\nOpenStack-API-Version: compute 2.84\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.token,
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Answer { status, body })
    }
}
