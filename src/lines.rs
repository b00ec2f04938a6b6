//! Cutting an NDJSON stream into lines as its chunks arrive: each byte is looked at once,
//! whatever the chunk sizes, and no line may grow past a bound (`[storage]
//! max_import_line_bytes`), so that one endless line cannot take the memory or the time.

use std::fmt;

/// Line `line` (counted from 1) is longer than `max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    pub line: u64,
    pub max: usize,
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Line {} is longer than {} bytes ([storage] max_import_line_bytes)",
            self.line, self.max
        )
    }
}

impl std::error::Error for LineTooLong {}

/// The lines of a stream, numbered from 1, without their `\n`.
pub struct Lines {
    /// The start of the line being read; never holds a `\n`.
    pending: Vec<u8>,
    max: usize,
    /// Lines completed so far.
    count: u64,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines {
            pending: Vec::new(),
            max,
            count: 0,
        }
    }

    /// Adds `chunk`; appends the lines it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<(u64, Vec<u8>)>) -> Result<(), LineTooLong> {
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.check(at)?;
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..at]);
            self.count += 1;
            out.push((self.count, line));
            rest = &rest[at + 1..];
        }
        self.check(rest.len())?;
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// The last line, when the stream did not end with `\n`.
    pub fn finish(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.pending.is_empty() {
            return None;
        }
        self.count += 1;
        Some((self.count, std::mem::take(&mut self.pending)))
    }

    fn check(&self, more: usize) -> Result<(), LineTooLong> {
        if self.pending.len() + more > self.max {
            return Err(LineTooLong {
                line: self.count + 1,
                max: self.max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Result<Vec<(u64, Vec<u8>)>, LineTooLong> {
        let mut lines = Lines::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            lines.push(chunk, &mut out)?;
        }
        out.extend(lines.finish());
        Ok(out)
    }

    #[test]
    fn lines_span_chunks_and_keep_their_numbers() {
        let got = split(&[b"ab", b"c\n\nde", b"f\ngh"], 10).unwrap();
        let want: Vec<(u64, Vec<u8>)> = vec![
            (1, b"abc".to_vec()),
            (2, b"".to_vec()),
            (3, b"def".to_vec()),
            (4, b"gh".to_vec()),
        ];
        assert_eq!(got, want);
        assert_eq!(split(&[b"x\n"], 10).unwrap(), vec![(1, b"x".to_vec())]);
    }

    #[test]
    fn a_line_over_the_bound_is_refused_by_number() {
        assert!(split(&[b"1234\n", b"12345\n"], 5).is_ok());
        assert_eq!(
            split(&[b"1234\n12", b"3456"], 5),
            Err(LineTooLong { line: 2, max: 5 })
        );
        assert_eq!(
            split(&[b"ok\n123456\n"], 5),
            Err(LineTooLong { line: 2, max: 5 })
        );
    }

    #[test]
    fn one_byte_chunks_give_the_same_lines() {
        let text = b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}";
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split(&bytes, 100).unwrap(), split(&[text], 100).unwrap());
    }
}
