//! Content-defined chunking of a stream with FastCDC (2020, normalization level 1),
//! giving the same cut points as chunking the whole input at once.
use fastcdc::v2020::{cut_gear, get_gear_with_seed, logarithm2, MASKS};
use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use store_format::ChunkerParams;
use tokio::io::{AsyncRead, AsyncReadExt};

/// FastCDC's gear tables (the second shifted left by one), seeded.
type Gear = Arc<(Box<[u64; 256]>, Box<[u64; 256]>)>;

#[derive(Clone)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
    gear: Gear,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunker({}/{}/{})", self.min, self.avg, self.max)
    }
}

impl Chunker {
    /// FastCDC's published gear table (unencrypted stores).
    pub fn new(p: &ChunkerParams) -> Self {
        Self::with_seed(p, 0)
    }

    /// The gear table XORed with `seed`: an encrypted store's secret seed makes
    /// its cut points, and so its chunk sizes, unpredictable without the key.
    pub fn with_seed(p: &ChunkerParams, seed: u64) -> Self {
        let bits = logarithm2(p.avg_size);
        Chunker {
            min: p.min_size as usize,
            avg: p.avg_size as usize,
            max: p.max_size as usize,
            mask_s: MASKS[(bits + 1) as usize],
            mask_l: MASKS[(bits - 1) as usize],
            gear: Arc::new(get_gear_with_seed(seed)),
        }
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    /// Length of the first chunk of `data`, which must hold at least `max_size`
    /// bytes unless it is the end of the input.
    pub fn first_cut(&self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        let (_, n) = cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear.0,
            &self.gear.1,
        );
        n.max(1).min(data.len())
    }

    /// All chunk lengths of an in-memory input.
    pub fn cuts(&self, mut data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = self.first_cut(data);
            out.push(n);
            data = &data[n..];
        }
        out
    }

    /// Chunk lengths of `data` from its start, leaving uncut a tail shorter than
    /// `max_size` unless `last` (the end of the input): the stream's later bytes
    /// could still move a cut inside such a tail.
    ///
    /// A large buffer is cut in two halves at once: the second half from its
    /// midpoint, speculatively, while the first is cut from the start. A cut
    /// depends only on the bytes from its chunk's start, so once the true chain
    /// of cuts reaches a point of the speculative chain, the two coincide from
    /// there on; until it does, the true chain goes on alone. The result is
    /// exactly the sequential one, whatever the data (a chain that never meets
    /// the other, as in a long run of zeros, just costs the wasted half).
    fn cuts_of_buffer(&self, data: &[u8], last: bool) -> Vec<usize> {
        let len = data.len();
        let mut ends = Vec::with_capacity(len / self.avg.max(1) * 2 + 1);
        if len < PARALLEL_CUT_MIN.max(8 * self.avg) {
            self.chain(data, last, 0, len, &mut ends);
        } else {
            let mid = len / 2;
            let half = ends.capacity() / 2 + 1;
            let (spec, mut pos) = std::thread::scope(|s| {
                let second = s.spawn(|| {
                    let mut spec = Vec::with_capacity(half);
                    self.chain(data, last, mid, len, &mut spec);
                    spec
                });
                let pos = self.chain(data, last, 0, mid, &mut ends);
                (
                    second.join().expect("the chunker's second half panicked"),
                    pos,
                )
            });
            // `pos` is the first chunk start at or past `mid` (or where cutting stopped).
            loop {
                let met = if pos == mid {
                    Some(0)
                } else {
                    spec.binary_search(&pos).ok().map(|i| i + 1)
                };
                if let Some(i) = met {
                    ends.extend_from_slice(&spec[i..]);
                    break;
                }
                if !self.may_cut(len - pos, last) {
                    break;
                }
                pos += self.first_cut(&data[pos..]);
                ends.push(pos);
            }
        }
        let mut prev = 0;
        ends.iter()
            .map(|&e| {
                let n = e - prev;
                prev = e;
                n
            })
            .collect()
    }

    /// Whether a chunk may be cut from `remaining` bytes now (rather than when
    /// more input has come).
    fn may_cut(&self, remaining: usize, last: bool) -> bool {
        remaining > 0 && (last || remaining >= self.max)
    }

    /// Cuts `data` from `pos` while the chunk starts before `stop`, pushing each
    /// chunk's end; returns where the next chunk starts.
    fn chain(
        &self,
        data: &[u8],
        last: bool,
        mut pos: usize,
        stop: usize,
        ends: &mut Vec<usize>,
    ) -> usize {
        while pos < stop && self.may_cut(data.len() - pos, last) {
            pos += self.first_cut(&data[pos..]);
            ends.push(pos);
        }
        pos
    }
}

/// Buffers at least this large (and 8 average chunks) are cut by two threads.
const PARALLEL_CUT_MIN: usize = 2 << 20;

/// Read buffers kept for reuse: a buffer returns here when the last chunk
/// that refers to it is dropped, so a long stream does not keep asking the
/// allocator (and the kernel) for fresh memory.
#[derive(Clone, Default)]
struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

/// Buffers kept for reuse (each `max_size` + [`fresh_len`] bytes). More may
/// exist at once; those are freed after use.
const POOL: usize = 6;

impl BufferPool {
    fn take(&self, len: usize) -> Vec<u8> {
        let reused = self.0.lock().unwrap().pop();
        match reused {
            Some(v) if v.len() == len => v,
            _ => vec![0u8; len],
        }
    }
}

/// A read buffer shared by the chunks cut from it.
struct Buffer {
    data: Vec<u8>,
    pool: BufferPool,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut pool = self.pool.0.lock().unwrap();
        if pool.len() < POOL {
            pool.push(std::mem::take(&mut self.data));
        }
    }
}

/// One chunk of a stream: a shared, read-only slice of one of the chunker's
/// read buffers, so a chunk is never copied on its way to the hasher and the
/// compressor.
#[derive(Clone)]
pub struct ChunkData {
    buf: Arc<Buffer>,
    start: usize,
    end: usize,
}

impl ChunkData {
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl std::ops::Deref for ChunkData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf.data[self.start..self.end]
    }
}

impl AsRef<[u8]> for ChunkData {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for ChunkData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkData({} bytes)", self.len())
    }
}

/// Fresh input per buffer: at least twice the largest chunk, and 8 MiB.
fn fresh_len(max: usize) -> usize {
    (2 * max).max(8 << 20)
}

/// A buffer filled by the reader: `data[max_size..max_size + n]` is fresh
/// input; the room before it is for the previous buffer's uncut tail.
struct Filled {
    data: Vec<u8>,
    n: usize,
    eof: bool,
}

/// A buffer cut on the blocking pool: `buf[start..end]` holds the carried-over
/// tail of the previous buffer followed by fresh input; `lens` are the cuts
/// from `start`; what follows them is the tail for the next buffer.
struct Cut {
    buf: Arc<Buffer>,
    start: usize,
    end: usize,
    lens: Vec<usize>,
}

/// Reads a stream and yields its chunks in order, with the same cut points as
/// [`Chunker::cuts`] on the whole input.
///
/// Three things overlap: the reader (a future returned by [`StreamChunker::new`],
/// to be driven alongside) reads ahead into buffers; the current buffer is cut
/// on the blocking pool; chunks of the buffer before are handed out as slices
/// of it (no copy). Each buffer starts with room for the previous buffer's
/// uncut tail (less than `max_size`), which is the only data ever copied.
/// Memory: a few buffers of `max_size` + max(2 × `max_size`, 8 MiB) bytes,
/// whatever the input's size.
pub struct StreamChunker {
    chunker: Chunker,
    pool: BufferPool,
    input: mpsc::Receiver<std::io::Result<Filled>>,
    input_done: bool,
    ready: VecDeque<ChunkData>,
    cutting: Option<tokio::task::JoinHandle<Cut>>,
    /// What the last cut left of its buffer, for the front of the next one.
    tail: Option<(Arc<Buffer>, usize, usize)>,
}

impl StreamChunker {
    /// The chunker, and the reader future that feeds it. Drive the reader
    /// concurrently with [`StreamChunker::next_chunk`] (e.g. `select` them):
    /// without it, `next_chunk` waits forever. It completes at the end of the
    /// input, after an error (which `next_chunk` then returns), or when the
    /// chunker is dropped.
    pub fn new<'r, R: AsyncRead + Unpin + Send + 'r>(
        reader: R,
        chunker: Chunker,
    ) -> (StreamChunker, impl Future<Output = ()> + Send + 'r) {
        let pool = BufferPool::default();
        // One buffer waits in the channel while the next is being read.
        let (mut tx, rx) = mpsc::channel(1);
        let (pad, fresh) = (chunker.max, fresh_len(chunker.max));
        let reader_pool = pool.clone();
        let reading = async move {
            let mut reader = reader;
            loop {
                let mut data = reader_pool.take(pad + fresh);
                let (mut n, mut eof) = (0, false);
                while n < fresh {
                    match reader.read(&mut data[pad + n..pad + fresh]).await {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(got) => n += got,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                if tx.send(Ok(Filled { data, n, eof })).await.is_err() || eof {
                    return;
                }
            }
        };
        let sc = StreamChunker {
            chunker,
            pool,
            input: rx,
            input_done: false,
            ready: VecDeque::new(),
            cutting: None,
            tail: None,
        };
        (sc, reading)
    }

    /// The next chunk, or `None` at the end of the input.
    pub async fn next_chunk(&mut self) -> std::io::Result<Option<ChunkData>> {
        loop {
            // Start cutting the next buffer as soon as both it and the previous
            // buffer's tail are there; wait for it only when nothing else is left.
            if self.cutting.is_none() && !self.input_done {
                let next = if self.ready.is_empty() {
                    Some(self.input.next().await)
                } else {
                    self.input.next().now_or_never()
                };
                match next {
                    Some(Some(Ok(filled))) => self.start_cut(filled),
                    Some(Some(Err(e))) => return Err(e),
                    Some(None) => {
                        return Err(std::io::Error::other(
                            "the input reader stopped before the end of the input",
                        ))
                    }
                    None => {} // not read yet
                }
            }
            if let Some(c) = self.ready.pop_front() {
                return Ok(Some(c));
            }
            if let Some(job) = self.cutting.take() {
                let cut = job
                    .await
                    .map_err(|e| std::io::Error::other(format!("chunker task failed: {e}")))?;
                let mut at = cut.start;
                for n in cut.lens {
                    self.ready.push_back(ChunkData {
                        buf: cut.buf.clone(),
                        start: at,
                        end: at + n,
                    });
                    at += n;
                }
                if at < cut.end {
                    self.tail = Some((cut.buf, at, cut.end));
                }
                continue;
            }
            if self.input_done {
                debug_assert!(
                    self.tail.is_none(),
                    "a tail is left only when more input may follow"
                );
                return Ok(None);
            }
        }
    }

    /// Puts the previous buffer's tail in front of a filled buffer's fresh
    /// input and cuts it on the blocking pool.
    fn start_cut(&mut self, filled: Filled) {
        let Filled { mut data, n, eof } = filled;
        self.input_done = eof;
        let pad = self.chunker.max;
        let mut start = pad;
        if let Some((src, a, b)) = self.tail.take() {
            // A tail is shorter than `max_size`: it fits in the room left for it.
            start = pad - (b - a);
            data[start..pad].copy_from_slice(&src.data[a..b]);
        }
        let end = pad + n;
        let buf = Arc::new(Buffer {
            data,
            pool: self.pool.clone(),
        });
        if start < end {
            let (chunker, last) = (self.chunker.clone(), eof);
            self.cutting = Some(tokio::task::spawn_blocking(move || {
                let lens = chunker.cuts_of_buffer(&buf.data[start..end], last);
                Cut {
                    buf,
                    start,
                    end,
                    lens,
                }
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Hands out at most `step` bytes per read (like a pipe), then fails if `fail`.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        fail: bool,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if self.data.is_empty() && self.fail {
                return Poll::Ready(Err(std::io::Error::other("the pipe broke")));
            }
            let n = self.step.min(self.data.len()).min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Poll::Ready(Ok(()))
        }
    }

    async fn stream_chunks(
        data: &[u8],
        p: &ChunkerParams,
        step: usize,
        fail: bool,
    ) -> std::io::Result<Vec<Vec<u8>>> {
        let (mut sc, reading) = StreamChunker::new(Trickle { data, step, fail }, Chunker::new(p));
        let collect = async {
            let mut out = Vec::new();
            while let Some(c) = sc.next_chunk().await? {
                out.push(c.to_vec());
            }
            Ok(out)
        };
        let ((), out) = futures::join!(reading, collect);
        out
    }

    fn input(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut v = vec![0u8; len];
        rng.fill_bytes(&mut v);
        // A run of zeros (cut at the maximum size) and a repeated stretch.
        if len > 3_000_000 {
            v[1_000_000..2_500_000].fill(0);
            let (a, b) = v.split_at_mut(len / 2);
            b[..len / 4].copy_from_slice(&a[..len / 4]);
        }
        v
    }

    /// Streaming gives exactly the cuts of the whole input, whatever the read
    /// sizes and wherever the buffer boundaries fall.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_cuts_equal_whole_input_cuts() {
        let small = ChunkerParams::new(16 * 1024, 64 * 1024, 256 * 1024);
        let default = super::super::default_chunker();
        let fresh = fresh_len(256 * 1024);
        for (p, lens) in [
            (
                &small,
                vec![
                    0,
                    1,
                    100,
                    16 * 1024,
                    256 * 1024,
                    fresh,
                    fresh + 256 * 1024,
                    2 * fresh - 1,
                    20_000_123,
                ],
            ),
            (
                &default,
                vec![0, 5, 4 << 20, fresh_len(4 << 20), 30_000_017],
            ),
        ] {
            for (i, &len) in lens.iter().enumerate() {
                let data = input(len, i as u64);
                let whole = Chunker::new(p).cuts(&data);
                for step in [usize::MAX, 1 << 16, 4099] {
                    let chunks = stream_chunks(&data, p, step, false).await.unwrap();
                    let got: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
                    assert_eq!(got, whole, "avg {} len {len} step {step}", p.avg_size);
                    assert!(
                        chunks.concat() == data,
                        "avg {} len {len} step {step}: content differs",
                        p.avg_size
                    );
                }
            }
        }
    }

    /// The two-thread cut of a buffer is the sequential cut, also where the
    /// two chains meet late or never (runs of zeros cut at the maximum size).
    #[test]
    fn parallel_buffer_cuts_equal_sequential_cuts() {
        let p = ChunkerParams::new(16 * 1024, 64 * 1024, 256 * 1024);
        let c = Chunker::new(&p);
        let sequential = |data: &[u8], last: bool| {
            let mut ends = Vec::new();
            c.chain(data, last, 0, data.len(), &mut ends);
            ends.iter()
                .scan(0, |prev, &e| Some(e - std::mem::replace(prev, e)))
                .collect::<Vec<_>>()
        };
        let random = input(6_000_000, 3);
        let mut zeros = vec![0u8; 6_000_000];
        zeros[..100_000].copy_from_slice(&random[..100_000]);
        let mut mixed = random.clone();
        mixed[2_000_000..4_500_000].fill(0);
        for data in [&random, &zeros, &mixed] {
            for len in [2 << 20, (2 << 20) + 12_345, 3_000_001, 6_000_000] {
                for last in [false, true] {
                    assert_eq!(
                        c.cuts_of_buffer(&data[..len], last),
                        sequential(&data[..len], last),
                        "len {len} last {last}"
                    );
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_error_reaches_the_chunker() {
        let p = ChunkerParams::new(16 * 1024, 64 * 1024, 256 * 1024);
        let data = input(10_000_000, 9);
        let err = stream_chunks(&data, &p, 1 << 16, true).await.unwrap_err();
        assert!(err.to_string().contains("the pipe broke"), "{err}");
    }
}
