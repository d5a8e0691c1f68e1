//! The dedup index: which objects the store holds, in memory, so an ingest needs
//! no round trip to the backend per chunk. Built from one listing of `objects/`
//! (256 prefix listings, a few in parallel); 32 bytes per listed object (a
//! sorted array, searched by bisection), plus a small hash set of what the
//! session itself adds.
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
    /// What the store held when the session began: sorted, exactly 32 bytes
    /// per object (a store may hold millions).
    listed: Vec<ObjectId>,
    /// What this session added since (few): a hash set.
    added: Mutex<IdSet>,
}

impl DedupIndex {
    /// Lists `objects/` once.
    pub async fn load(store: &Store) -> Result<DedupIndex> {
        let ids = list_object_ids(store).await?;
        Ok(Self::from_listed(
            ids.into_iter().map(|(id, _)| id).collect(),
        ))
    }

    /// An index of the objects in `ids` (in any order).
    pub fn from_listed(mut ids: Vec<ObjectId>) -> DedupIndex {
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        DedupIndex {
            listed: ids,
            added: Mutex::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.listed.len() + self.added.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.listed.binary_search(id).is_ok() || self.added.lock().unwrap().contains(id)
    }
    /// Records `id` as present; true when it was not yet known (the caller
    /// must then write it).
    pub fn insert(&self, id: ObjectId) -> bool {
        self.listed.binary_search(&id).is_err() && self.added.lock().unwrap().insert(id)
    }
    /// Forgets `id` (its write failed).
    pub fn remove(&self, id: &ObjectId) {
        self.added.lock().unwrap().remove(id);
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
