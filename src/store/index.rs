//! The dedup index: which objects the store holds, in memory, so an ingest needs
//! no round trip to the backend per chunk. Built from one listing of `objects/`
//! (256 prefix listings, a few in parallel); 36 bytes per listed object (a
//! sorted array of ids, searched by bisection, and their encoded sizes), plus a
//! small hash map of what the session itself adds.
use super::error::Result;
use super::shared::Listing;
use super::{Store, OBJECTS};
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};
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
    /// What the store held when the listing was taken: sorted, 32 bytes per
    /// object (a store may hold millions), plus 4 for its encoded size at the
    /// same position (so a backup can say how much it occupies, reused
    /// objects included). Shared by the sessions of a process that run at
    /// once (see [`super::shared`]).
    listing: Arc<Listing>,
    /// What this session added since (few), with encoded sizes once written.
    added: Mutex<IdMap<u32>>,
}

impl DedupIndex {
    /// Lists `objects/` once (for this index alone).
    pub async fn load(store: &Store) -> Result<DedupIndex> {
        Ok(Self::from_listed(list_object_ids(store).await?))
    }

    /// An index of the objects in `ids` with their encoded sizes (in any order).
    pub fn from_listed(ids: Vec<(ObjectId, u64)>) -> DedupIndex {
        Self::on(Arc::new(Listing::from_listed(ids)))
    }

    /// An index on a listing (shared or not), with nothing added yet.
    pub fn on(listing: Arc<Listing>) -> DedupIndex {
        DedupIndex {
            listing,
            added: Mutex::default(),
        }
    }

    /// Whether the lock that keeps a shared listing valid (if any) kept its
    /// heartbeats in time so far.
    pub fn listing_always_live(&self) -> bool {
        self.listing.always_live()
    }

    /// Whether both indexes start from the same listing (in memory once).
    pub fn shares_listing_with(&self, other: &DedupIndex) -> bool {
        Arc::ptr_eq(&self.listing, &other.listing)
    }

    pub fn len(&self) -> usize {
        self.listing.ids.len() + self.added.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.listing.ids.binary_search(id).is_ok() || self.added.lock().unwrap().contains_key(id)
    }
    /// Records `id` as present; true when it was not yet known (the caller
    /// must then write it, and report its size with [`Self::set_size`]).
    pub fn insert(&self, id: ObjectId) -> bool {
        if self.listing.ids.binary_search(&id).is_ok() {
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
        match self.listing.ids.binary_search(id) {
            Ok(i) => Some(self.listing.sizes[i] as u64),
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
