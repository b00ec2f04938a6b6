//! `nova-actions health`: asks a running service's /healthcheck over plain TCP, so that a
//! container health check needs nothing but the binary.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use super::CommandError;

/// A dependency-free probe for container health checks.
pub fn health(addr: SocketAddr) -> Result<(), CommandError> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /healthcheck HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.lines().next().unwrap_or("");
    if status.split(' ').nth(1) == Some("200") {
        println!("OK");
        Ok(())
    } else {
        Err(CommandError::Work(format!("unhealthy: {status}")))
    }
}
