//! The dedup index: which objects the store holds, in memory, so an ingest needs
//! no round trip to the backend per chunk. Built from one listing of `objects/`
//! (256 prefix listings, a few in parallel); 36 bytes per listed object (a
//! sorted array of ids, searched by bisection, and their encoded sizes), plus a
//! small hash map of what the session itself adds.
use super::error::Result;
use super::{Store, OBJECTS};
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};
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
pub type IdMap<V> = HashMap<ObjectId, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Default)]
pub struct DedupIndex {
    /// What the store held when the session began: sorted, 32 bytes per
    /// object (a store may hold millions) ...
    listed: Vec<ObjectId>,
    /// ... plus 4 for its encoded size, at the same position (so a backup can
    /// say how much it occupies, reused objects included).
    listed_sizes: Vec<u32>,
    /// What this session added since (few), with encoded sizes once written.
    added: Mutex<IdMap<u32>>,
}

impl DedupIndex {
    /// Lists `objects/` once.
    pub async fn load(store: &Store) -> Result<DedupIndex> {
        Ok(Self::from_listed(list_object_ids(store).await?))
    }

    /// An index of the objects in `ids` with their encoded sizes (in any order).
    pub fn from_listed(mut ids: Vec<(ObjectId, u64)>) -> DedupIndex {
        ids.sort_unstable_by_key(|a| a.0);
        ids.dedup_by(|a, b| a.0 == b.0);
        let mut listed = Vec::with_capacity(ids.len());
        let mut listed_sizes = Vec::with_capacity(ids.len());
        for (id, size) in ids {
            listed.push(id);
            listed_sizes.push(size.min(u32::MAX as u64) as u32);
        }
        DedupIndex {
            listed,
            listed_sizes,
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
        self.listed.binary_search(id).is_ok() || self.added.lock().unwrap().contains_key(id)
    }
    /// Records `id` as present; true when it was not yet known (the caller
    /// must then write it, and report its size with [`Self::set_size`]).
    pub fn insert(&self, id: ObjectId) -> bool {
        if self.listed.binary_search(&id).is_ok() {
            return false;
        }
        let mut added = self.added.lock().unwrap();
        if added.contains_key(&id) {
            return false;
        }
        added.insert(id, 0);
        true
    }
    /// The encoded size of an object this session wrote.
    pub fn set_size(&self, id: &ObjectId, size: u64) {
        if let Some(s) = self.added.lock().unwrap().get_mut(id) {
            *s = size.min(u32::MAX as u64) as u32;
        }
    }
    /// The encoded size of a known object (0 while a write is in flight).
    pub fn size_of(&self, id: &ObjectId) -> Option<u64> {
        match self.listed.binary_search(id) {
            Ok(i) => Some(self.listed_sizes[i] as u64),
            Err(_) => self.added.lock().unwrap().get(id).map(|&s| s as u64),
        }
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
