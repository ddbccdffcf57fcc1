//! The asset TLV (spec §4): genesis, witnesses, split commitments.

use crate::error::{invalid, ErrorKind, Result, Within};
use crate::primitives::{outpoint_hash_bytes, read_outpoint, sha256, write_outpoint, PubKey};
use crate::tlv::{
    exact, write_bigsize, write_var_bytes, Policy, Reader, Stream, StreamWriter, UnknownOdd,
};
use bitcoin::OutPoint;
use tapvault_mssmt::CompressedProof;

pub const MAX_ASSET_SIZE: u64 = 4_000_000;
pub const MAX_TAG_LEN: u64 = 64;
pub const MAX_WITNESSES: u64 = 65535;
pub const MAX_WITNESS_SIZE: u64 = 65535;
pub const MAX_TX_WITNESS_ITEMS: u64 = 65535;
pub const MAX_TX_WITNESS_ITEM: u64 = 65535;

/// Asset type: 0 = normal, 1 = collectible.
pub const TYPE_NORMAL: u8 = 0;
pub const TYPE_COLLECTIBLE: u8 = 1;

pub type AssetId = [u8; 32];

/// The genesis of an asset; its hash is the asset ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    pub first_prev_out: OutPoint,
    /// UTF-8 in practice; kept as bytes so nothing is lost.
    pub tag: Vec<u8>,
    pub meta_hash: [u8; 32],
    pub output_index: u32,
    pub asset_type: u8,
}

impl Default for Genesis {
    /// The all-zero genesis (alt leaves, STXO spent-asset leaves). Note that
    /// `OutPoint::default()` is the *null* outpoint (vout u32::MAX); tapd's
    /// zero outpoint has vout 0.
    fn default() -> Self {
        Genesis {
            first_prev_out: OutPoint {
                txid: bitcoin::hashes::Hash::all_zeros(),
                vout: 0,
            },
            tag: Vec::new(),
            meta_hash: [0; 32],
            output_index: 0,
            asset_type: 0,
        }
    }
}

impl Genesis {
    pub fn read(r: &mut Reader) -> Result<Self> {
        Ok(Genesis {
            first_prev_out: read_outpoint(r).within("first_prev_out")?,
            tag: r.var_bytes(MAX_TAG_LEN).within("tag")?.to_vec(),
            meta_hash: r.array().within("meta_hash")?,
            output_index: r.u32_be().within("output_index")?,
            asset_type: r.u8().within("type")?,
        })
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        exact(b, Self::read)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        write_outpoint(out, &self.first_prev_out);
        write_var_bytes(out, &self.tag);
        out.extend_from_slice(&self.meta_hash);
        out.extend_from_slice(&self.output_index.to_be_bytes());
        out.push(self.asset_type);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(&mut v);
        v
    }

    /// SHA256(txid || vout LE || SHA256(tag) || meta_hash || output_index BE || type).
    pub fn asset_id(&self) -> AssetId {
        sha256(&[
            &outpoint_hash_bytes(&self.first_prev_out),
            &sha256(&[&self.tag]),
            &self.meta_hash,
            &self.output_index.to_be_bytes(),
            &[self.asset_type],
        ])
    }

    pub fn tag_lossy(&self) -> String {
        String::from_utf8_lossy(&self.tag).into_owned()
    }
}

/// Identifies the asset output a witness spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrevId {
    pub out_point: OutPoint,
    pub asset_id: AssetId,
    pub script_key: PubKey,
}

impl PrevId {
    pub const LEN: usize = 101;

    pub fn zero() -> Self {
        PrevId {
            out_point: OutPoint {
                txid: bitcoin::hashes::Hash::all_zeros(),
                vout: 0,
            },
            asset_id: [0; 32],
            script_key: PubKey::ZERO,
        }
    }
    pub fn is_zero(&self) -> bool {
        *self == Self::zero()
    }
    pub fn read(r: &mut Reader) -> Result<Self> {
        Ok(PrevId {
            out_point: read_outpoint(r).within("out_point")?,
            asset_id: r.array().within("asset_id")?,
            // tapd keeps PrevID keys as raw serialized bytes, never parsed
            // as points, so any 33 bytes are accepted here.
            script_key: PubKey(r.array().within("script_key")?),
        })
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        write_outpoint(out, &self.out_point);
        out.extend_from_slice(&self.asset_id);
        out.extend_from_slice(&self.script_key.0);
    }
    /// The 100 bytes hashed by PrevID.Hash and the burn key.
    pub fn hash_preimage(&self) -> [u8; 100] {
        let mut b = [0u8; 100];
        b[..36].copy_from_slice(&outpoint_hash_bytes(&self.out_point));
        b[36..68].copy_from_slice(&self.asset_id);
        // The zero key hashes as 32 zero bytes.
        b[68..].copy_from_slice(&self.script_key.x_only());
        b
    }
    /// SHA256(txid || vout LE || asset_id || xonly(script_key)).
    pub fn hash(&self) -> [u8; 32] {
        sha256(&[&self.hash_preimage()])
    }
}

/// Proof that a split output is committed to in the root asset's split tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitCommitment {
    pub proof: CompressedProof,
    pub root_asset: Box<Asset>,
}

/// One previous-input witness of an asset.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Witness {
    pub prev_id: Option<PrevId>,
    pub tx_witness: Vec<Vec<u8>>,
    pub split_commitment: Option<SplitCommitment>,
}

pub fn read_tx_witness(r: &mut Reader) -> Result<Vec<Vec<u8>>> {
    let n = r.count(MAX_TX_WITNESS_ITEMS, 1)?;
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        items.push(
            r.var_bytes(MAX_TX_WITNESS_ITEM)
                .within(format!("item {i}"))?
                .to_vec(),
        );
    }
    Ok(items)
}

pub fn write_tx_witness(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    write_bigsize(out, items.len() as u64);
    for it in items {
        write_var_bytes(out, it);
    }
}

impl Witness {
    pub fn decode(b: &[u8]) -> Result<Self> {
        // Witness streams are decoded laxly by tapd: unknown types of either
        // parity are skipped and not written back.
        let mut s = Stream::parse(b, u64::MAX)?;
        let prev_id = match s.take(1) {
            Some(v) => Some(exact(v, PrevId::read).within("prev_id(1)")?),
            None => None,
        };
        let tx_witness = match s.take(3) {
            Some(v) => exact(v, read_tx_witness).within("tx_witness(3)")?,
            None => Vec::new(),
        };
        let split_commitment = match s.take_capped(5, 65535).within("split_commitment(5)")? {
            Some(v) => Some(
                exact(v, |r| {
                    let p = r.var_bytes(65535).within("proof")?;
                    let proof = CompressedProof::decode(p)
                        .map_err(|e| crate::error::DecodeError::new(ErrorKind::from(e)))
                        .within("proof")?;
                    let a = r.var_bytes(MAX_ASSET_SIZE).within("root_asset")?;
                    let root_asset = Box::new(Asset::decode(a).within("root_asset")?);
                    Ok(SplitCommitment { proof, root_asset })
                })
                .within("split_commitment(5)")?,
            ),
            None => None,
        };
        s.finish(Policy::Lax)?;
        Ok(Witness {
            prev_id,
            tx_witness,
            split_commitment,
        })
    }

    pub fn encode(&self, with_tx_witness: bool) -> Vec<u8> {
        let mut w = StreamWriter::new();
        if let Some(p) = &self.prev_id {
            let mut v = Vec::with_capacity(PrevId::LEN);
            p.write(&mut v);
            w.record(1, v);
        }
        if with_tx_witness && !self.tx_witness.is_empty() {
            let mut v = Vec::new();
            write_tx_witness(&mut v, &self.tx_witness);
            w.record(3, v);
        }
        if let Some(sc) = &self.split_commitment {
            let mut v = Vec::new();
            write_var_bytes(&mut v, &sc.proof.encode());
            write_var_bytes(&mut v, &sc.root_asset.encode());
            w.record(5, v);
        }
        w.finish(&UnknownOdd::new())
    }
}

/// Root of a split commitment tree (hash, sum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitRoot {
    pub hash: [u8; 32],
    pub sum: u64,
}

/// A Taproot Asset (spec §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Asset {
    pub version: u8,
    pub genesis: Genesis,
    pub asset_type: u8,
    pub amount: u64,
    pub lock_time: u64,
    pub relative_lock_time: u64,
    pub prev_witnesses: Vec<Witness>,
    pub split_commitment_root: Option<SplitRoot>,
    pub script_version: u16,
    pub script_key: PubKey,
    pub group_key: Option<PubKey>,
    pub unknown: UnknownOdd,
}

fn read_witnesses(r: &mut Reader) -> Result<Vec<Witness>> {
    let n = r.count(MAX_WITNESSES, 1)?;
    let mut ws = Vec::with_capacity(n);
    for i in 0..n {
        let b = r
            .var_bytes(MAX_WITNESS_SIZE)
            .within(format!("witness {i}"))?;
        ws.push(Witness::decode(b).within(format!("witness {i}"))?);
    }
    Ok(ws)
}

fn u8_record(v: &[u8]) -> Result<u8> {
    exact(v, |r| r.u8())
}

impl Asset {
    /// Decodes a full asset stream (strict: unknown even types rejected,
    /// unknown odd ones kept).
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() as u64 > MAX_ASSET_SIZE {
            return Err(ErrorKind::LengthOverCap {
                len: b.len() as u64,
                cap: MAX_ASSET_SIZE,
            }
            .into());
        }
        let mut s = Stream::parse(b, MAX_ASSET_SIZE)?;
        let version = u8_record(s.require(0)?).within("version(0)")?;
        let genesis = Genesis::decode(s.require(2)?).within("genesis(2)")?;
        let asset_type = u8_record(s.require(4)?).within("type(4)")?;
        let amount = exact(s.require(6)?, |r| r.bigsize()).within("amount(6)")?;
        let mut a = Asset {
            version,
            genesis,
            asset_type,
            amount,
            ..Default::default()
        };
        a.decode_tail(&mut s)?;
        a.script_version = exact(s.require(14)?, |r| r.u16_be()).within("script_version(14)")?;
        a.script_key = exact(s.require(16)?, PubKey::read).within("script_key(16)")?;
        a.unknown = s.finish(Policy::Strict)?;
        Ok(a)
    }

    fn decode_tail(&mut self, s: &mut Stream) -> Result<()> {
        if let Some(v) = s.take(7) {
            self.lock_time = exact(v, |r| r.bigsize()).within("lock_time(7)")?;
        }
        if let Some(v) = s.take(9) {
            self.relative_lock_time = exact(v, |r| r.bigsize()).within("relative_lock_time(9)")?;
        }
        if let Some(v) = s.take(11) {
            self.prev_witnesses = exact(v, read_witnesses).within("prev_witnesses(11)")?;
        }
        if let Some(v) = s.take(13) {
            self.split_commitment_root = Some(
                exact(v, |r| {
                    Ok(SplitRoot {
                        hash: r.array()?,
                        sum: r.u64_be()?,
                    })
                })
                .within("split_commitment_root(13)")?,
            );
        }
        if let Some(v) = s.take(17) {
            self.group_key = Some(exact(v, PubKey::read).within("group_key(17)")?);
        }
        Ok(())
    }

    /// Decodes an alt leaf: only records 11, 14, 16 and unknown odd ones;
    /// everything else takes its default (empty genesis, amount 0, V0).
    pub fn decode_alt_leaf(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_ASSET_SIZE)?;
        if let Some(t) = s.types().find(|t| t % 2 == 0 && ![11, 14, 16].contains(t)) {
            return Err(ErrorKind::TypeNotAllowed(t).into());
        }
        let mut a = Asset::default();
        if let Some(v) = s.take(11) {
            a.prev_witnesses = exact(v, read_witnesses).within("prev_witnesses(11)")?;
        }
        a.script_version = exact(s.require(14)?, |r| r.u16_be()).within("script_version(14)")?;
        a.script_key = exact(s.require(16)?, PubKey::read).within("script_key(16)")?;
        let unknown = s.finish(Policy::Strict)?;
        if let Some(t) = unknown.keys().find(|t| [7u64, 9, 13, 17].contains(t)) {
            return Err(ErrorKind::TypeNotAllowed(*t).into());
        }
        a.unknown = unknown;
        Ok(a)
    }

    pub fn encode_alt_leaf(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        if !self.prev_witnesses.is_empty() {
            w.record(11, self.encode_witnesses(true));
        }
        w.u16(14, self.script_version);
        w.record(16, self.script_key.0.to_vec());
        w.finish(&self.unknown)
    }

    fn encode_witnesses(&self, with_tx_witness: bool) -> Vec<u8> {
        let mut v = Vec::new();
        write_bigsize(&mut v, self.prev_witnesses.len() as u64);
        for wit in &self.prev_witnesses {
            write_var_bytes(&mut v, &wit.encode(with_tx_witness));
        }
        v
    }

    fn encode_inner(&self, with_tx_witness: bool) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u8(0, self.version);
        w.record(2, self.genesis.encode());
        w.u8(4, self.asset_type);
        w.bigsize(6, self.amount);
        if self.lock_time != 0 {
            w.bigsize(7, self.lock_time);
        }
        if self.relative_lock_time != 0 {
            w.bigsize(9, self.relative_lock_time);
        }
        if !self.prev_witnesses.is_empty() {
            w.record(11, self.encode_witnesses(with_tx_witness));
        }
        if let Some(sr) = &self.split_commitment_root {
            let mut v = Vec::with_capacity(40);
            v.extend_from_slice(&sr.hash);
            v.extend_from_slice(&sr.sum.to_be_bytes());
            w.record(13, v);
        }
        w.u16(14, self.script_version);
        w.record(16, self.script_key.0.to_vec());
        if let Some(g) = &self.group_key {
            w.record(17, g.0.to_vec());
        }
        w.finish(&self.unknown)
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_inner(true)
    }

    /// The bytes of this asset's commitment leaf (spec §4.4): the full
    /// encoding for V0, without witness stacks for V1.
    pub fn leaf_bytes(&self) -> Result<Vec<u8>> {
        match self.version {
            0 => Ok(self.encode_inner(true)),
            1 => Ok(self.encode_inner(false)),
            v => invalid(format!("unknown asset version {v}")),
        }
    }

    pub fn id(&self) -> AssetId {
        self.genesis.asset_id()
    }

    /// Genesis asset: one witness with the zero PrevID and no split
    /// commitment (spec §4.5); its witness stack is empty, or, for a
    /// grouped asset, the group witness.
    pub fn is_genesis(&self) -> bool {
        self.has_genesis_witness() || self.has_genesis_witness_for_group()
    }

    /// The one zero-PrevID witness, without split commitment, whose stack
    /// is empty (`Some(true)`) or not (`Some(false)`).
    fn genesis_witness_stack_empty(&self) -> Option<bool> {
        match self.prev_witnesses.as_slice() {
            [w] if w.prev_id.as_ref().is_some_and(|p| p.is_zero())
                && w.split_commitment.is_none() =>
            {
                Some(w.tx_witness.is_empty())
            }
            _ => None,
        }
    }

    /// A genesis witness with an empty stack (ungrouped, or grouped and not
    /// yet signed).
    pub fn has_genesis_witness(&self) -> bool {
        self.genesis_witness_stack_empty() == Some(true)
    }

    /// A grouped genesis carrying its group witness.
    pub fn has_genesis_witness_for_group(&self) -> bool {
        self.group_key.is_some() && self.genesis_witness_stack_empty() == Some(false)
    }

    /// A split (non-root) output: its one witness carries a split commitment.
    pub fn has_split_commitment_witness(&self) -> bool {
        matches!(self.prev_witnesses.as_slice(), [w] if w.prev_id.is_some() && w.tx_witness.is_empty() && w.split_commitment.is_some())
    }

    /// The PrevID a universe follows back to the previous proof: the first
    /// witness's, or for a split output the root asset's first witness's.
    pub fn primary_prev_id(&self) -> Option<PrevId> {
        let w = self.prev_witnesses.first()?;
        if let Some(sc) = &w.split_commitment {
            return sc.root_asset.prev_witnesses.first()?.prev_id;
        }
        w.prev_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_must_match_field() {
        // amount record whose length claims 2 but the BigSize is 1 byte.
        let mut a = Asset::default();
        a.genesis.tag = b"x".to_vec();
        a.script_key = PubKey::ZERO;
        let mut b = a.encode();
        let pos = b.windows(3).position(|w| w == [6, 1, 0]).unwrap();
        b[pos + 1] = 2;
        b.insert(pos + 3, 0);
        let e = Asset::decode(&b).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::WrongLength { .. }), "{e}");
        assert_eq!(e.path, vec!["amount(6)"]);
    }
}
