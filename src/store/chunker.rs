//! Content-defined chunking of a stream with FastCDC (2020, normalization level 1),
//! giving the same cut points as chunking the whole input at once.
use fastcdc::v2020::{cut, logarithm2, MASKS};
use store_format::ChunkerParams;
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, Clone, Copy)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    pub fn new(p: &ChunkerParams) -> Self {
        let bits = logarithm2(p.avg_size);
        Chunker {
            min: p.min_size as usize,
            avg: p.avg_size as usize,
            max: p.max_size as usize,
            mask_s: MASKS[(bits + 1) as usize],
            mask_l: MASKS[(bits - 1) as usize],
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
        let (_, n) = cut(data, self.min, self.avg, self.max, self.mask_s, self.mask_l, self.mask_s << 1, self.mask_l << 1);
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
}

/// Reads an async stream and yields its chunks in order. Holds one buffer of a
/// few times the maximum chunk size, so memory does not grow with the input.
pub struct StreamChunker<R> {
    reader: R,
    chunker: Chunker,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    eof: bool,
    /// Bytes read so far.
    pub consumed: u64,
}

impl<R: AsyncRead + Unpin> StreamChunker<R> {
    pub fn new(reader: R, chunker: Chunker) -> Self {
        let cap = (chunker.max * 4).max(8 << 20);
        StreamChunker { reader, chunker, buf: vec![0; cap], pos: 0, filled: 0, eof: false, consumed: 0 }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        while self.filled < self.buf.len() {
            let n = self.reader.read(&mut self.buf[self.filled..]).await?;
            if n == 0 {
                self.eof = true;
                break;
            }
            self.filled += n;
            self.consumed += n as u64;
        }
        Ok(())
    }

    /// The next chunk, or `None` at the end of the input.
    pub async fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if !self.eof && self.filled - self.pos < self.chunker.max {
            self.fill().await?;
        }
        let window = &self.buf[self.pos..self.filled];
        if window.is_empty() {
            return Ok(None);
        }
        let n = self.chunker.first_cut(window);
        let chunk = window[..n].to_vec();
        self.pos += n;
        Ok(Some(chunk))
    }
}
