//! The dedup index: which objects the store holds, in memory, so an ingest needs
//! no round trip to the backend per chunk. Built from one listing of `objects/`
//! (256 prefix listings, a few in parallel); about 40 bytes per object
//! (a 32-byte id in a hash set with a cheap hasher: ids are already uniform).
use super::error::Result;
use super::{Store, OBJECTS};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use store_format::ObjectId;

/// Takes the first 8 bytes of an id as its hash: ids are BLAKE3 outputs.
#[derive(Default)]
pub struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // ObjectId hashes as its 32 bytes (after a length prefix for arrays? no:
        // fixed arrays hash without one), so the first write carries the id.
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
}

pub type IdSet = HashSet<ObjectId, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
pub struct DedupIndex {
    ids: Mutex<IdSet>,
}

impl DedupIndex {
    /// Lists `objects/` once.
    pub async fn load(store: &Store) -> Result<DedupIndex> {
        let ids = list_object_ids(store).await?;
        Ok(DedupIndex {
            ids: Mutex::new(ids.into_iter().map(|(id, _)| id).collect()),
        })
    }

    pub fn len(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.ids.lock().unwrap().contains(id)
    }
    /// Records `id` as present; true when it was not yet known (the caller
    /// must then write it).
    pub fn insert(&self, id: ObjectId) -> bool {
        self.ids.lock().unwrap().insert(id)
    }
    /// Forgets `id` (its write failed).
    pub fn remove(&self, id: &ObjectId) {
        self.ids.lock().unwrap().remove(id);
    }
}

/// Every object under `objects/` with its encoded size.
pub async fn list_object_ids(store: &Store) -> Result<Vec<(ObjectId, u64)>> {
    let prefixes: Vec<String> = (0..=255u8).map(|b| format!("{OBJECTS}{b:02x}/")).collect();
    let lists: Vec<Vec<(ObjectId, u64)>> = futures::stream::iter(prefixes)
        .map(|p| async move {
            let entries = store.backend().list(&p).await?;
            Ok::<_, super::StoreError>(
                entries
                    .into_iter()
                    .filter_map(|e| {
                        let name = e.path.rsplit('/').next()?;
                        let id = ObjectId::from_hex(name).ok()?;
                        (e.size > 0).then_some((id, e.size))
                    })
                    .collect(),
            )
        })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}
