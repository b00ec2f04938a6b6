//! Below 2.58 a list has no limit. A history too long for one buffer is sent in chunks, each a
//! fresh range scan resuming after the last key sent, so memory never grows with the history.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use futures_core::Stream;
use uuid::Uuid;

use super::version::Version;
use super::view::write_action;
use crate::store::{After, Cursor, PageQuery, Store, StoreError};

/// Actions per chunk; a history of at most this many goes out as one sized body.
const CHUNK: usize = 500;

pub struct ActionStream {
    store: Arc<Store>,
    server: Uuid,
    instance: String,
    version: Version,
    after: Option<Cursor>,
    written: bool,
    done: bool,
}

impl ActionStream {
    pub fn new(store: Arc<Store>, server: Uuid, version: Version) -> ActionStream {
        let instance = server.hyphenated().to_string();
        ActionStream {
            store,
            server,
            instance,
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
    pub fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), StoreError> {
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
        let end = self.store.list_page(&self.server, &page, |action| {
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

impl Stream for ActionStream {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut out = Vec::with_capacity(CHUNK * 400);
        match self.fill(&mut out) {
            Ok(()) => Poll::Ready(Some(Ok(Bytes::from(out)))),
            Err(e) => {
                // The status is already sent: all that is left is to cut the body short.
                log::error!("streaming the actions of {} failed: {e}", self.server);
                self.done = true;
                Poll::Ready(Some(Err(actix_web::error::ErrorInternalServerError(
                    "storage error",
                ))))
            }
        }
    }
}
