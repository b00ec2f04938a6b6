//! Bodies sent in chunks, each chunk a fresh store read resuming where the last ended, so
//! memory never grows with what is sent: unpaged lists below 2.58 and exports.
//!
//! On the embedded store a chunk is read in place on the worker; otherwise on a blocking
//! thread, so a worker never waits on a database round trip.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use futures_core::Stream;
use uuid::Uuid;

use super::version::Version;
use super::view::write_action;
use crate::store::{After, Cursor, PageQuery, Store, StoreError};

/// What a chunked body is made of.
pub trait Chunks: Send + Unpin + 'static {
    /// Appends the next chunk to `out`; false once everything is sent.
    fn next_chunk(&mut self, store: &Store, out: &mut Vec<u8>) -> Result<bool, StoreError>;

    /// Logs why the body was cut short (its status is already sent).
    fn failed(&self, e: &StoreError);
}

type Produced<C> = (C, Result<Option<Vec<u8>>, StoreError>);

enum State<C> {
    Idle(C),
    Reading(actix_web::rt::task::JoinHandle<Produced<C>>),
    Done,
}

pub struct StoreStream<C: Chunks> {
    store: Arc<Store>,
    state: State<C>,
}

impl<C: Chunks> StoreStream<C> {
    pub fn new(store: Arc<Store>, chunks: C) -> StoreStream<C> {
        StoreStream {
            store,
            state: State::Idle(chunks),
        }
    }

    fn produced(&mut self, (chunks, result): Produced<C>) -> Poll<Option<<Self as Stream>::Item>> {
        match result {
            Ok(Some(out)) => {
                self.state = State::Idle(chunks);
                Poll::Ready(Some(Ok(Bytes::from(out))))
            }
            Ok(None) => Poll::Ready(None),
            Err(e) => {
                chunks.failed(&e);
                Poll::Ready(Some(Err(actix_web::error::ErrorInternalServerError(
                    "storage error",
                ))))
            }
        }
    }
}

fn produce<C: Chunks>(mut chunks: C, store: &Store) -> Produced<C> {
    let mut out = Vec::new();
    let result = chunks
        .next_chunk(store, &mut out)
        .map(|more| more.then_some(out));
    (chunks, result)
}

impl<C: Chunks> Stream for StoreStream<C> {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Done) {
            State::Done => Poll::Ready(None),
            State::Idle(chunks) if this.store.answers_in_place() => {
                let produced = produce(chunks, &this.store);
                this.produced(produced)
            }
            State::Idle(chunks) => {
                let store = Arc::clone(&this.store);
                let reading = actix_web::rt::task::spawn_blocking(move || produce(chunks, &store));
                this.state = State::Reading(reading);
                Pin::new(this).poll_next(cx)
            }
            State::Reading(mut reading) => match Pin::new(&mut reading).poll(cx) {
                Poll::Pending => {
                    this.state = State::Reading(reading);
                    Poll::Pending
                }
                Poll::Ready(Ok(produced)) => this.produced(produced),
                Poll::Ready(Err(e)) => {
                    log::error!("a store read for a streamed body failed: {e}");
                    Poll::Ready(Some(Err(actix_web::error::ErrorInternalServerError(
                        "storage error",
                    ))))
                }
            },
        }
    }
}

/// Actions per chunk; a history of at most this many goes out as one sized body.
const CHUNK: usize = 500;

/// Below 2.58 a list has no limit: the whole history, newest first.
pub struct ActionChunks {
    server: Uuid,
    instance: String,
    version: Version,
    after: Option<Cursor>,
    written: bool,
    done: bool,
}

impl ActionChunks {
    pub fn new(server: Uuid, version: Version) -> ActionChunks {
        ActionChunks {
            server,
            instance: server.hyphenated().to_string(),
            version,
            after: None,
            written: false,
            done: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the next chunk to `out`: the opening of the document first, its closing last.
    fn fill(&mut self, store: &Store, out: &mut Vec<u8>) -> Result<(), StoreError> {
        if self.after.is_none() && !self.written {
            out.extend_from_slice(br#"{"instanceActions": ["#);
        }
        let page = PageQuery {
            after: self.after.map_or(After::Start, After::Cursor),
            since: None,
            before: None,
            limit: CHUNK,
        };
        let (instance, version, mut written) = (&self.instance, self.version, self.written);
        let end = store.list_page(&self.server, &page, |action| {
            if written {
                out.extend_from_slice(b", ");
            }
            write_action(out, instance, action, version, |_| ());
            written = true;
        })?;
        let (count, after) = (end.count, end.cursor.or(self.after));
        (self.written, self.after) = (written, after);
        if count < CHUNK {
            out.extend_from_slice(b"]}");
            self.done = true;
        }
        Ok(())
    }
}

impl Chunks for ActionChunks {
    fn next_chunk(&mut self, store: &Store, out: &mut Vec<u8>) -> Result<bool, StoreError> {
        if self.done {
            return Ok(false);
        }
        out.reserve(CHUNK * 400);
        self.fill(store, out)?;
        Ok(true)
    }

    fn failed(&self, e: &StoreError) {
        log::error!("streaming the actions of {} failed: {e}", self.server);
    }
}
