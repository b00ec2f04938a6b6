//! Which backend the suite runs against: the embedded store (default), or PostgreSQL when
//! `NOVA_ACTIONS_TEST_BACKEND=postgres` and `NOVA_ACTIONS_TEST_POSTGRES_URL` (a role that may
//! create databases) are set. Every store a test makes (a temporary directory) then becomes a
//! database of its own, named after that directory, so tests stay isolated and a test that
//! restarts a server on "the same store" finds the same database.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use nova_actions::config::{Backend, Config};

/// The PostgreSQL server the suite uses, if it runs against PostgreSQL.
pub fn postgres_url() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let wanted = std::env::var("NOVA_ACTIONS_TEST_BACKEND").unwrap_or_default();
        match wanted.as_str() {
            "" | "sled" => None,
            "postgres" => {
                Some(std::env::var("NOVA_ACTIONS_TEST_POSTGRES_URL").expect(
                    "NOVA_ACTIONS_TEST_BACKEND=postgres needs NOVA_ACTIONS_TEST_POSTGRES_URL",
                ))
            }
            other => panic!("NOVA_ACTIONS_TEST_BACKEND={other}: expected sled or postgres"),
        }
    })
    .as_deref()
}

/// The URL of a PostgreSQL server for tests that need one whatever the suite's backend
/// (`NOVA_ACTIONS_TEST_POSTGRES_URL`); None, with a message, when there is none.
pub fn postgres_for(test: &str) -> Option<String> {
    match std::env::var("NOVA_ACTIONS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            say(&format!(
                "SKIPPED {test}: no PostgreSQL (set NOVA_ACTIONS_TEST_POSTGRES_URL, as .ci/run does)"
            ));
            None
        }
    }
}

/// A line on the terminal even when the test passes: the harness captures `eprintln!` of
/// passing tests, not writes to the stderr handle itself.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs SQL on the server `url` names (as its user, in its database).
pub fn sql(url: &str, statement: &str) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        let driver = tokio::spawn(connection);
        let out = client
            .simple_query(statement)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            });
        drop(client);
        let _ = driver.await;
        out
    })
}

/// The rows of a query, each as its columns' text.
pub fn rows(url: &str, query: &str) -> Vec<Vec<String>> {
    sql(url, query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(s, _)| s.contains("://") && !s.ends_with('/'))
        .unwrap_or((base, ""));
    format!("{server}/{database}{query}")
}

/// A fresh database on `url`'s server; its URL.
pub fn create_database(url: &str, name: &str) -> String {
    for attempt in 0.. {
        match sql(url, &format!("CREATE DATABASE {name}")) {
            Ok(_) => break,
            // Made earlier for the same directory.
            Err(e) if e.starts_with("42P04") => break,
            // Concurrent CREATE DATABASEs copy the same template, one at a time.
            Err(e) if e.contains("being accessed by other users") && attempt < 50 => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("CREATE DATABASE {name}: {e}"),
        }
    }
    with_database(url, name)
}

/// The database that stands for the store directory `dir` (created on first use).
pub fn database_for(url: &str, dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    create_database(url, &format!("t_{:016x}", hasher.finish()))
}

/// Points a configuration whose `data_dir` is set at the suite's backend.
pub fn configure(config: &mut Config) {
    if let Some(url) = postgres_url() {
        config.storage.backend = Backend::Postgres;
        config.postgres.url = database_for(url, &config.storage.data_dir);
    }
}

/// `--data-dir DIR` for the binary, or the environment that points it at DIR's database.
pub trait StoreArg {
    fn store(&mut self, dir: impl AsRef<Path>) -> &mut Self;
}

impl StoreArg for Command {
    fn store(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        match postgres_url() {
            None => self.arg("--data-dir").arg(dir.as_ref()),
            Some(url) => self.env("NOVA_ACTIONS__STORAGE__BACKEND", "postgres").env(
                "NOVA_ACTIONS__POSTGRES__URL",
                database_for(url, dir.as_ref()),
            ),
        }
    }
}

/// Skips a test that is about the embedded store's files, with a message, on PostgreSQL.
pub fn embedded_only(test: &str) -> bool {
    if postgres_url().is_some() {
        say(&format!(
            "SKIPPED {test}: it is about the embedded store's files"
        ));
        return false;
    }
    true
}
