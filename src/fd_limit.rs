//! Every connection is an open file. Many systems start a process with a soft limit of 1024
//! open files while allowing far more, which would cap connections well below
//! `[server] max_connections`: raise the soft limit to the hard one, as most servers do.
#![allow(unsafe_code)] // getrlimit and setrlimit have no safe wrapper in std.

/// Raises the soft open-file limit to the hard limit. Returns (before, after).
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a pointer to a live local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before: u64 = limit.rlim_cur;
    if limit.rlim_cur >= limit.rlim_max {
        return Ok((before, before));
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads one rlimit from a live local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((before, limit.rlim_cur))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let (before, after) = super::raise_open_files().unwrap();
        assert!(after >= before);
        let (again, same) = super::raise_open_files().unwrap();
        assert_eq!((again, same), (after, after));
    }
}
