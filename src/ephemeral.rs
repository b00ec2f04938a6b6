//! `serve --ephemeral`: a store in a fresh temporary directory that goes away with the process,
//! for other projects' tests. Removed after a graceful stop and on the "second signal, exit
//! now" path too, which skips destructors (hence a process-wide record instead of a guard).

use std::path::PathBuf;
use std::sync::Mutex;

static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes the directory and remembers it for [`remove`].
pub fn create() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "nova-actions-ephemeral-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&dir)?;
    *DIR.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(dir.clone());
    Ok(dir)
}

/// Removes the directory made by [`create`], if any; safe to call more than once.
pub fn remove() {
    let taken = DIR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(dir) = taken {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            log::warn!(
                "could not remove the ephemeral store {}: {e}",
                dir.display()
            );
        }
    }
}
