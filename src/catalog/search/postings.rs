//! Posting lists of the search index: for each gram, the ascending document numbers of
//! the items whose filename or alt contains it, stored in blocks of at most `BLOCK`
//! numbers so that one change rewrites one small value.
//!
//! `key = gram (UTF-8, never 0xFF) 0xFF base (u64 big-endian)`; the value is the block's
//! numbers as LEB128 deltas, the first one from `base`. Blocks of a gram never overlap:
//! every number of a block is at least its `base` and below the next block's `base`.
//! Numbers are handed out in increasing order, so additions append to the last block.

use std::ops::Bound;

use redb::{ReadableTable, Table};

use crate::catalog::Result;

/// Most numbers in one block (about 150-400 bytes).
pub const BLOCK: usize = 128;

pub fn key(gram: &[u8], base: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(gram.len() + 9);
    key.extend_from_slice(gram);
    key.push(0xFF);
    key.extend_from_slice(&base.to_be_bytes());
    key
}

fn base_of(key: &[u8]) -> u64 {
    let tail: [u8; 8] = key[key.len() - 8..].try_into().unwrap_or_default();
    u64::from_be_bytes(tail)
}

pub fn encode(base: u64, numbers: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(numbers.len() * 2);
    let mut prev = base;
    for &n in numbers {
        let mut delta = n - prev;
        prev = n;
        loop {
            let byte = (delta & 0x7F) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Decodes into `out` (cleared first). A malformed tail ends the block early.
pub fn decode(base: u64, bytes: &[u8], out: &mut Vec<u64>) {
    out.clear();
    let (mut value, mut shift, mut prev) = (0u64, 0u32, base);
    for &b in bytes {
        if shift >= 64 {
            return;
        }
        value |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            prev = prev.saturating_add(value);
            out.push(prev);
            (value, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
}

type GramTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// Decodes into `block` the gram's block that would hold `n` (the last one whose base is at
/// most `n`) and returns its base, or `None` when every block starts above `n`.
fn block_at(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    gram: &[u8],
    n: u64,
    block: &mut Vec<u64>,
) -> Result<Option<u64>> {
    let (lo, at) = (key(gram, 0), key(gram, n));
    let Some((k, v)) = table
        .range(lo.as_slice()..=at.as_slice())?
        .next_back()
        .transpose()?
    else {
        return Ok(None);
    };
    let base = base_of(k.value());
    decode(base, v.value(), block);
    Ok(Some(base))
}

/// Appends `numbers` (ascending, all above every number already listed) to a gram's list.
pub fn append(table: &mut GramTable<'_>, gram: &[u8], numbers: &[u64]) -> Result<()> {
    let mut rest = numbers;
    let mut block = Vec::with_capacity(BLOCK);
    if let Some(base) = block_at(table, gram, u64::MAX, &mut block)? {
        let room = BLOCK.saturating_sub(block.len()).min(rest.len());
        if room > 0 {
            block.extend_from_slice(&rest[..room]);
            table.insert(key(gram, base).as_slice(), encode(base, &block).as_slice())?;
            rest = &rest[room..];
        }
    }
    for chunk in rest.chunks(BLOCK) {
        let base = chunk[0];
        table.insert(key(gram, base).as_slice(), encode(base, chunk).as_slice())?;
    }
    Ok(())
}

/// Removes `numbers` (ascending) from a gram's list; emptied blocks are deleted.
pub fn remove(table: &mut GramTable<'_>, gram: &[u8], numbers: &[u64]) -> Result<()> {
    let mut block = Vec::with_capacity(BLOCK);
    let mut i = 0;
    while i < numbers.len() {
        let Some(base) = block_at(table, gram, numbers[i], &mut block)? else {
            i += 1; // not listed: nothing to remove
            continue;
        };
        let end = block.last().copied().unwrap_or(base);
        if numbers[i] > end {
            i += 1; // between this block and the next: not listed
            continue;
        }
        let before = block.len();
        while i < numbers.len() && numbers[i] <= end {
            if let Ok(at) = block.binary_search(&numbers[i]) {
                block.remove(at);
            }
            i += 1;
        }
        let k = key(gram, base);
        if block.is_empty() {
            table.remove(k.as_slice())?;
        } else if block.len() != before {
            table.insert(k.as_slice(), encode(base, &block).as_slice())?;
        }
    }
    Ok(())
}

/// A cursor over one gram's list that can skip ahead (for intersecting lists).
pub struct Postings<'a, T> {
    table: &'a T,
    gram: Vec<u8>,
    block: Vec<u64>,
    pos: usize,
}

impl<'a, T: ReadableTable<&'static [u8], &'static [u8]>> Postings<'a, T> {
    pub fn new(table: &'a T, gram: &[u8]) -> Self {
        Self {
            table,
            gram: gram.to_vec(),
            block: Vec::with_capacity(BLOCK),
            pos: 0,
        }
    }

    /// The first listed number at or above `target`, or `None` past the end.
    pub fn seek(&mut self, target: u64) -> Result<Option<u64>> {
        if self.block.last().is_some_and(|&last| last >= target) {
            self.pos += self.block[self.pos..].partition_point(|&n| n < target);
            return Ok(Some(self.block[self.pos]));
        }
        // The block that would hold `target`, if it reaches that far...
        if block_at(self.table, &self.gram, target, &mut self.block)?.is_some()
            && self.block.last().is_some_and(|&last| last >= target)
        {
            self.pos = self.block.partition_point(|&n| n < target);
            return Ok(Some(self.block[self.pos]));
        }
        // ...else the next block, whose numbers are all above `target`.
        let (at, hi) = (key(&self.gram, target), key(&self.gram, u64::MAX));
        let bounds = (
            Bound::Excluded(at.as_slice()),
            Bound::Included(hi.as_slice()),
        );
        match self.table.range::<&[u8]>(bounds)?.next().transpose()? {
            Some((k, v)) => {
                decode(base_of(k.value()), v.value(), &mut self.block);
                self.pos = 0;
                Ok(self.block.first().copied())
            }
            None => {
                self.block.clear();
                Ok(None)
            }
        }
    }
}

/// Calls `each` with every number listed in all of `lists`, ascending (leapfrog join:
/// the rarest list sets the pace, the others skip ahead to it).
pub fn intersect<T: ReadableTable<&'static [u8], &'static [u8]>>(
    lists: &mut [Postings<'_, T>],
    mut each: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    if lists.is_empty() {
        return Ok(());
    }
    let mut target = 0u64;
    loop {
        let mut agreed = true;
        for list in lists.iter_mut() {
            match list.seek(target)? {
                None => return Ok(()),
                Some(n) if n > target => {
                    target = n;
                    agreed = false;
                }
                Some(_) => {}
            }
        }
        if agreed {
            each(target)?;
            match target.checked_add(1) {
                Some(next) => target = next,
                None => return Ok(()),
            }
        }
    }
}
