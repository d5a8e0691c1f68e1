//! Reading items back: a stream over a chunk list that fetches a few chunks
//! ahead and checks every chunk against its id as it goes.
use super::error::{Result, StoreError};
use super::Store;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use store_format::{ChunkRef, Item};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The item's bytes, chunk by chunk, each verified.
pub fn item_stream(
    store: &Store,
    item: &Item,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let store = store.clone();
    let chunks: Vec<ChunkRef> = item.chunks.clone();
    let name = item.name.clone();
    futures::stream::iter(chunks)
        .map(move |c| {
            let (store, name) = (store.clone(), name.clone());
            async move {
                let (_, plain) = store.read_object(&c.id).await.map_err(|e| match e {
                    StoreError::MissingObject { id } => {
                        StoreError::Invalid(format!("{name}: chunk {id} is missing"))
                    }
                    e => e,
                })?;
                if plain.len() != c.len as usize {
                    return Err(StoreError::Invalid(format!(
                        "{name}: chunk {} has {} bytes, the manifest says {}",
                        c.id,
                        plain.len(),
                        c.len
                    )));
                }
                Ok(Bytes::from(plain))
            }
        })
        .buffered(4)
}

/// Writes the item to `out`; returns the number of bytes written.
pub async fn write_item<W: AsyncWrite + Unpin>(
    store: &Store,
    item: &Item,
    out: &mut W,
) -> Result<u64> {
    let s = item_stream(store, item);
    futures::pin_mut!(s);
    let mut n = 0u64;
    while let Some(b) = s.next().await {
        let b = b?;
        out.write_all(&b).await.map_err(StoreError::Input)?;
        n += b.len() as u64;
    }
    out.flush().await.map_err(StoreError::Input)?;
    Ok(n)
}
