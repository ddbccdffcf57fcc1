//! TLV primitives: BigSize, a bounds-checked reader, stream parsing with
//! tapd's strict/lax unknown-type policies, and stream writing.

use crate::error::{DecodeError, ErrorKind, Result, Within};
use std::collections::BTreeMap;

/// lnd's `tlv.MaxRecordSize`, the per-record cap of "P2P" streams.
pub const MAX_P2P_RECORD: u64 = 65535;

/// Unknown odd records kept for re-encoding: type → raw value.
pub type UnknownOdd = BTreeMap<u64, Vec<u8>>;

/// Bounds-checked cursor over untrusted bytes. Never allocates on its own.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            return Err(ErrorKind::Truncated {
                needed: n,
                available: self.remaining() as u64,
            }
            .into());
        }
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16_be(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32_be(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64_be(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// BigSize with minimal encoding enforced.
    pub fn bigsize(&mut self) -> Result<u64> {
        let d = self.u8()?;
        let (v, min) = match d {
            0xfd => (self.u16_be()? as u64, 0xfd),
            0xfe => (self.u32_be()? as u64, 0x1_0000),
            0xff => (self.u64_be()?, 0x1_0000_0000),
            x => return Ok(x as u64),
        };
        if v < min {
            return Err(ErrorKind::NonCanonicalVarInt.into());
        }
        Ok(v)
    }
    /// `BigSize n || n bytes` with `n <= cap`.
    pub fn var_bytes(&mut self, cap: u64) -> Result<&'a [u8]> {
        let n = self.bigsize()?;
        if n > cap {
            return Err(ErrorKind::LengthOverCap { len: n, cap }.into());
        }
        self.take(n)
    }
    /// A count prefix, capped both by `cap` and by what the remaining bytes
    /// could hold at `min_item` bytes each (so no hostile pre-allocation).
    pub fn count(&mut self, cap: u64, min_item: u64) -> Result<usize> {
        let n = self.bigsize()?;
        if n > cap {
            return Err(ErrorKind::CountOverCap { count: n, cap }.into());
        }
        if n.saturating_mul(min_item.max(1)) > self.remaining() as u64 {
            return Err(ErrorKind::Truncated {
                needed: n.saturating_mul(min_item.max(1)),
                available: self.remaining() as u64,
            }
            .into());
        }
        Ok(n as usize)
    }
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(ErrorKind::TrailingBytes(self.remaining() as u64).into());
        }
        Ok(())
    }
}

/// Runs `f` over a record value, requiring it to consume the value exactly.
pub fn exact<'a, T>(v: &'a [u8], f: impl FnOnce(&mut Reader<'a>) -> Result<T>) -> Result<T> {
    let mut r = Reader::new(v);
    let out = f(&mut r)?;
    if !r.is_empty() {
        return Err(ErrorKind::WrongLength {
            expected: r.position() as u64,
            got: v.len() as u64,
        }
        .into());
    }
    Ok(out)
}

pub fn write_bigsize(out: &mut Vec<u8>, v: u64) {
    if v < 0xfd {
        out.push(v as u8);
    } else if v <= 0xffff {
        out.push(0xfd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xfe);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

pub fn bigsize_len(v: u64) -> usize {
    match v {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

pub fn write_var_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_bigsize(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A parsed TLV stream whose records have not been interpreted yet.
pub struct Stream<'a> {
    records: Vec<(u64, &'a [u8])>,
    taken: Vec<bool>,
}

/// How unknown records are treated when a stream is finished.
#[derive(Clone, Copy)]
pub enum Policy {
    /// Unknown even = error; unknown odd kept (most tapd streams).
    Strict,
    /// Unknown types of any parity skipped and dropped (asset witnesses).
    Lax,
}

impl<'a> Stream<'a> {
    /// Parses records, enforcing strictly increasing types and a per-record
    /// cap (`MAX_P2P_RECORD` for P2P streams).
    pub fn parse(b: &'a [u8], max_record: u64) -> Result<Self> {
        let mut r = Reader::new(b);
        let mut records = Vec::new();
        let mut prev: Option<u64> = None;
        while !r.is_empty() {
            let t = r.bigsize().within("type")?;
            if let Some(p) = prev {
                if t <= p {
                    return Err(ErrorKind::TypesNotIncreasing { prev: p, got: t }.into());
                }
            }
            prev = Some(t);
            let len = r.bigsize().within(format!("record {t} length"))?;
            if len > max_record {
                return Err(DecodeError::new(ErrorKind::LengthOverCap {
                    len,
                    cap: max_record,
                })
                .within(format!("record {t}")));
            }
            let v = r.take(len).within(format!("record {t}"))?;
            records.push((t, v));
        }
        let taken = vec![false; records.len()];
        Ok(Stream { records, taken })
    }

    /// The value of record `t`, if present.
    pub fn take(&mut self, t: u64) -> Option<&'a [u8]> {
        let i = self.records.iter().position(|(rt, _)| *rt == t)?;
        self.taken[i] = true;
        Some(self.records[i].1)
    }

    /// Like `take`, with a per-type length cap.
    pub fn take_capped(&mut self, t: u64, cap: u64) -> Result<Option<&'a [u8]>> {
        match self.take(t) {
            Some(v) if v.len() as u64 > cap => Err(DecodeError::new(ErrorKind::LengthOverCap {
                len: v.len() as u64,
                cap,
            })),
            other => Ok(other),
        }
    }

    pub fn require(&mut self, t: u64) -> Result<&'a [u8]> {
        self.take(t)
            .ok_or_else(|| DecodeError::new(ErrorKind::MissingRecord(t)))
    }

    /// Applies the unknown-type policy to the records not taken.
    pub fn finish(self, policy: Policy) -> Result<UnknownOdd> {
        let mut unknown = UnknownOdd::new();
        for ((t, v), taken) in self.records.into_iter().zip(self.taken) {
            if taken {
                continue;
            }
            match policy {
                Policy::Lax => {}
                Policy::Strict if t % 2 == 0 => {
                    return Err(ErrorKind::UnknownEvenType(t).into());
                }
                Policy::Strict => {
                    unknown.insert(t, v.to_vec());
                }
            }
        }
        Ok(unknown)
    }

    /// Whether a record of type `t` is present (taken or not).
    pub fn has(&self, t: u64) -> bool {
        self.records.iter().any(|(rt, _)| *rt == t)
    }

    /// Every record in order, taken or not.
    pub fn records(&self) -> impl Iterator<Item = (u64, &'a [u8])> + '_ {
        self.records.iter().copied()
    }

    pub fn types(&self) -> impl Iterator<Item = u64> + '_ {
        self.records.iter().map(|(t, _)| *t)
    }
}

/// Collects records, then writes them sorted by type with unknown odd
/// records merged in.
#[derive(Default)]
pub struct StreamWriter {
    records: Vec<(u64, Vec<u8>)>,
}

impl StreamWriter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn record(&mut self, t: u64, v: Vec<u8>) -> &mut Self {
        self.records.push((t, v));
        self
    }
    pub fn u8(&mut self, t: u64, v: u8) -> &mut Self {
        self.record(t, vec![v])
    }
    pub fn u16(&mut self, t: u64, v: u16) -> &mut Self {
        self.record(t, v.to_be_bytes().to_vec())
    }
    pub fn u32(&mut self, t: u64, v: u32) -> &mut Self {
        self.record(t, v.to_be_bytes().to_vec())
    }
    pub fn bigsize(&mut self, t: u64, v: u64) -> &mut Self {
        let mut b = Vec::with_capacity(9);
        write_bigsize(&mut b, v);
        self.record(t, b)
    }
    pub fn finish_into(mut self, unknown: &UnknownOdd, out: &mut Vec<u8>) {
        for (t, v) in unknown {
            if !self.records.iter().any(|(rt, _)| rt == t) {
                self.records.push((*t, v.clone()));
            }
        }
        self.records.sort_by_key(|(t, _)| *t);
        for (t, v) in &self.records {
            write_bigsize(out, *t);
            write_bigsize(out, v.len() as u64);
            out.extend_from_slice(v);
        }
    }
    pub fn finish(self, unknown: &UnknownOdd) -> Vec<u8> {
        let mut out = Vec::new();
        self.finish_into(unknown, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigsize_round_trip_and_minimality() {
        for v in [
            0u64,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            write_bigsize(&mut b, v);
            assert_eq!(b.len(), bigsize_len(v));
            let mut r = Reader::new(&b);
            assert_eq!(r.bigsize().unwrap(), v);
            assert!(r.is_empty());
        }
        for bad in [
            &[0xfd, 0x00, 0xfc][..],
            &[0xfe, 0, 0, 0xff, 0xff],
            &[0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert_eq!(
                Reader::new(bad).bigsize().unwrap_err().kind,
                ErrorKind::NonCanonicalVarInt
            );
        }
        assert!(matches!(
            Reader::new(&[0xfd, 0x01]).bigsize().unwrap_err().kind,
            ErrorKind::Truncated { .. }
        ));
    }

    #[test]
    fn stream_rules() {
        // Duplicate and decreasing types.
        assert!(matches!(
            Stream::parse(&[1, 0, 1, 0], 10).err().unwrap().kind,
            ErrorKind::TypesNotIncreasing { .. }
        ));
        assert!(matches!(
            Stream::parse(&[3, 0, 1, 0], 10).err().unwrap().kind,
            ErrorKind::TypesNotIncreasing { .. }
        ));
        // Length over cap.
        assert!(matches!(
            Stream::parse(&[1, 3, 0, 0, 0], 2).err().unwrap().kind,
            ErrorKind::LengthOverCap { .. }
        ));
        // Unknown even vs odd.
        let s = Stream::parse(&[2, 1, 9], 10).unwrap();
        assert_eq!(
            s.finish(Policy::Strict).unwrap_err().kind,
            ErrorKind::UnknownEvenType(2)
        );
        let s = Stream::parse(&[3, 1, 9], 10).unwrap();
        let u = s.finish(Policy::Strict).unwrap();
        assert_eq!(u.get(&3), Some(&vec![9]));
        let s = Stream::parse(&[2, 1, 9, 3, 0], 10).unwrap();
        assert!(s.finish(Policy::Lax).unwrap().is_empty());
        // Write-back merges unknown odd records in order.
        let mut w = StreamWriter::new();
        w.u8(0, 1).u8(4, 2);
        assert_eq!(w.finish(&u), vec![0, 1, 1, 3, 1, 9, 4, 1, 2]);
    }
}
