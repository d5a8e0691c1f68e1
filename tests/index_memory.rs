//! The dedup index must cost a few dozen bytes per object at most: a store can
//! hold millions of chunks. Measured with a counting allocator (this test file
//! is its own process, so nothing else allocates meanwhile).
use n8n_ark::store::index::DedupIndex;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use store_format::ObjectId;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::SeqCst);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::SeqCst);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::SeqCst);
        LIVE.fetch_sub(l.size(), Ordering::SeqCst);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn id(i: u64) -> ObjectId {
    ObjectId::of(&i.to_le_bytes())
}

#[test]
fn the_dedup_index_costs_a_few_dozen_bytes_per_object() {
    let listed = 1_000_000u64;
    let added = 20_000u64;
    let before = LIVE.load(Ordering::SeqCst);
    let index = DedupIndex::from_listed((0..listed).map(|i| (id(i), 1000 + i)).collect());
    for i in listed..listed + added {
        assert!(index.insert(id(i)), "a new object is new");
    }
    let per_object = (LIVE.load(Ordering::SeqCst) - before) as f64 / (listed + added) as f64;
    eprintln!("dedup index: {per_object:.1} bytes per object");
    assert!(
        per_object <= 40.0,
        "the dedup index costs {per_object:.1} bytes per object"
    );
    // And it answers correctly.
    assert_eq!(index.len() as u64, listed + added);
    assert!(
        index.contains(&id(0))
            && index.contains(&id(listed - 1))
            && index.contains(&id(listed + 5))
    );
    assert!(!index.contains(&id(listed + added)));
    assert!(!index.insert(id(17)), "a listed object is not new");
    assert_eq!(
        index.size_of(&id(17)),
        Some(1017),
        "listed sizes stay with their ids"
    );
    index.set_size(&id(listed + 3), 4321);
    assert_eq!(index.size_of(&id(listed + 3)), Some(4321));
    index.remove(&id(listed + 5));
    assert!(!index.contains(&id(listed + 5)));
}
