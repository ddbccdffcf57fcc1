//! Field encodings shared by assets, proofs and addresses.

use crate::error::{ErrorKind, Result};
use crate::tlv::Reader;
use bitcoin::hashes::Hash as _;
use bitcoin::{OutPoint, Txid};
use sha2::{Digest, Sha256};
use std::fmt;

/// A 33-byte compressed public key as carried on the wire. All zeros is
/// accepted and means "no key"; anything else must be a valid point. The
/// bytes are kept as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PubKey(pub [u8; 33]);

impl PubKey {
    pub const ZERO: PubKey = PubKey([0; 33]);

    pub fn from_bytes(b: [u8; 33]) -> Result<Self> {
        if b != [0; 33] && bitcoin::secp256k1::PublicKey::from_slice(&b).is_err() {
            return Err(ErrorKind::BadKey.into());
        }
        Ok(PubKey(b))
    }
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        let a: [u8; 33] = b.try_into().map_err(|_| ErrorKind::WrongLength {
            expected: 33,
            got: b.len() as u64,
        })?;
        Self::from_bytes(a)
    }
    pub fn read(r: &mut Reader) -> Result<Self> {
        Self::from_bytes(r.array()?)
    }
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 33]
    }
    /// The x coordinate: what every hash preimage uses.
    pub fn x_only(&self) -> [u8; 32] {
        let mut x = [0u8; 32];
        x.copy_from_slice(&self.0[1..]);
        x
    }
    pub fn to_secp(&self) -> Option<bitcoin::secp256k1::PublicKey> {
        bitcoin::secp256k1::PublicKey::from_slice(&self.0).ok()
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Default for PubKey {
    fn default() -> Self {
        PubKey::ZERO
    }
}

impl fmt::Debug for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PubKey({})", self.to_hex())
    }
}

impl fmt::Display for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Outpoint in TLV form: txid (internal order) || vout u32 BE.
pub fn read_outpoint(r: &mut Reader) -> Result<OutPoint> {
    let txid = Txid::from_byte_array(r.array()?);
    let vout = r.u32_be()?;
    Ok(OutPoint { txid, vout })
}

pub fn write_outpoint(out: &mut Vec<u8>, op: &OutPoint) {
    out.extend_from_slice(op.txid.as_byte_array());
    out.extend_from_slice(&op.vout.to_be_bytes());
}

/// Outpoint as btcd hashes it: txid (internal order) || vout u32 LE.
pub fn outpoint_hash_bytes(op: &OutPoint) -> [u8; 36] {
    let mut b = [0u8; 36];
    b[..32].copy_from_slice(op.txid.as_byte_array());
    b[32..].copy_from_slice(&op.vout.to_le_bytes());
    b
}

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Bitcoin CompactSize (little-endian, canonical) as used inside tapscript
/// leaf preimages.
pub fn read_compact_size(r: &mut Reader) -> Result<u64> {
    let d = r.u8()?;
    let (v, min) = match d {
        0xfd => (u16::from_le_bytes(r.array()?) as u64, 0xfd),
        0xfe => (u32::from_le_bytes(r.array()?) as u64, 0x1_0000),
        0xff => (u64::from_le_bytes(r.array()?), 0x1_0000_0000),
        x => return Ok(x as u64),
    };
    if v < min {
        return Err(ErrorKind::NonCanonicalVarInt.into());
    }
    Ok(v)
}

pub fn write_compact_size(out: &mut Vec<u8>, v: u64) {
    if v < 0xfd {
        out.push(v as u8);
    } else if v <= 0xffff {
        out.push(0xfd);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xfe);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Parses `"<display txid>:<vout>"`.
pub fn parse_outpoint(s: &str) -> std::result::Result<OutPoint, String> {
    s.parse::<OutPoint>()
        .map_err(|e| format!("bad outpoint {s:?}: {e}"))
}
