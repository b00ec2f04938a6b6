//! The schema, owned by the binary: numbered migrations compiled in, applied in order under an
//! advisory lock so that nodes starting together don't race, each in its own transaction with
//! its version row. A database at a version newer than this binary knows is refused.

use tokio_postgres::{Client, NoTls};

use super::db_error;
use crate::store::{Result, StoreError};

/// One step of a migration: SQL, or a rewrite SQL cannot do (records are bincode).
enum Step {
    Sql(&'static str),
    /// Fills the v2 listing columns from each server's record.
    FillServerListingColumns,
}

/// The migrations, in order; version N is the Nth. Never edit one that has shipped: add one.
const MIGRATIONS: &[&[Step]] = &[
    &[Step::Sql(
        // 1: servers, actions (the action and its events in two columns, so that a list reads
        //    the actions alone), the recording-order sequence.
        "CREATE TABLE servers (
        instance_uuid uuid PRIMARY KEY,
        record bytea NOT NULL,
        deleted_at bigint,
        -- How far updated_at strays from start_time on this server: bounds time-filter scans.
        lag_min bigint NOT NULL DEFAULT 0,
        lag_max bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX servers_deleted_at ON servers (deleted_at) WHERE deleted_at IS NOT NULL;
    CREATE TABLE actions (
        instance_uuid uuid NOT NULL,
        start_time bigint NOT NULL,
        seq bigint NOT NULL,
        request_id bytea NOT NULL,
        updated_at bigint,
        action bytea NOT NULL,
        events bytea NOT NULL,
        PRIMARY KEY (instance_uuid, start_time, seq)
    );
    CREATE UNIQUE INDEX actions_by_request ON actions (instance_uuid, request_id, start_time, seq);
    CREATE INDEX actions_by_update ON actions (instance_uuid, updated_at);
    CREATE SEQUENCE action_seq;",
    )],
    // 2: what listing servers needs (Nova's `created_at desc, id desc`), as columns with an
    //    index over all servers and one per project; `seq` is the registration order.
    &[
        Step::Sql(
            "ALTER TABLE servers ADD COLUMN project_id text, ADD COLUMN created_key bigint,
                ADD COLUMN seq bigint;
            CREATE SEQUENCE server_seq;",
        ),
        Step::FillServerListingColumns,
        Step::Sql(
            "ALTER TABLE servers ALTER COLUMN project_id SET NOT NULL,
                ALTER COLUMN created_key SET NOT NULL, ALTER COLUMN seq SET NOT NULL;
            CREATE INDEX servers_listed ON servers (created_key, seq, instance_uuid);
            CREATE INDEX servers_listed_by_project
                ON servers (project_id, created_key, seq, instance_uuid);",
        ),
    ],
    // 3: small named values kept with the data (the mirror's watermark).
    &[Step::Sql(
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    )],
];

pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// Any constant both nodes agree on: the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x6e6f_7661_6163_7473; // "novaacts"

/// Brings the database to [`LATEST`] and returns the version it is at. `Open` when its schema
/// is newer than this binary; `Unavailable` when it cannot be reached.
pub async fn migrate(config: &tokio_postgres::Config) -> Result<i32> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(db_error)?;
    // A session of its own: the advisory lock goes with it, whatever happens.
    let driver = tokio::spawn(connection);
    let outcome = migrate_on(&mut client).await;
    drop(client);
    let _ = driver.await;
    outcome
}

async fn migrate_on(client: &mut Client) -> Result<i32> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(db_error)?;
    let mut version = current_version(client).await?;
    if version > LATEST {
        return Err(StoreError::Open {
            path: "postgres".into(),
            reason: format!(
                "the database's schema is at version {version}, newer than this binary's \
                 {LATEST}: run the newer nova-actions that migrated it (nothing was changed)"
            ),
        });
    }
    while version < LATEST {
        let next = version + 1;
        let tx = client.transaction().await.map_err(db_error)?;
        for step in MIGRATIONS[(next - 1) as usize] {
            match step {
                Step::Sql(sql) => tx.batch_execute(sql).await.map_err(db_error)?,
                Step::FillServerListingColumns => fill_server_listing_columns(&tx).await?,
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&next],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        log::info!("PostgreSQL schema migrated to version {next}");
        version = next;
    }
    Ok(version)
}

async fn fill_server_listing_columns(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    let rows = tx
        .query("SELECT instance_uuid, record FROM servers", &[])
        .await
        .map_err(db_error)?;
    let update = tx
        .prepare(
            "UPDATE servers SET project_id = $2, created_key = $3, seq = $4
             WHERE instance_uuid = $1",
        )
        .await
        .map_err(db_error)?;
    for row in &rows {
        let id: uuid::Uuid = row.get(0);
        let server = crate::store::decode_server(row.get(1))?;
        let (created, seq) = server.list_position();
        tx.execute(&update, &[&id, &server.project_id, &created, &(seq as i64)])
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

pub async fn current_version(client: &Client) -> Result<i32> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(db_error)?;
    Ok(row.get(0))
}
