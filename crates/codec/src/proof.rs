//! The single transition proof ("TAPP", spec §2) and its nested records.

use crate::asset::{read_tx_witness, write_tx_witness, Asset, Genesis};
use crate::error::{invalid, DecodeError, ErrorKind, Result, Within};
use crate::file::File;
use crate::primitives::{
    read_compact_size, read_outpoint, write_compact_size, write_outpoint, PubKey,
};
use crate::tlv::{
    exact, write_bigsize, write_var_bytes, Policy, Reader, Stream, StreamWriter, UnknownOdd,
    MAX_P2P_RECORD,
};
use bitcoin::hashes::Hash as _;
use bitcoin::{OutPoint, Transaction, Txid};
use tapvault_mssmt::CompressedProof;

pub const PROOF_MAGIC: [u8; 4] = *b"TAPP";
pub const MAX_ANCHOR_TX: u64 = 4_000_000;
pub const MAX_META_DATA: u64 = 1024 * 1024;
pub const MAX_TAPROOT_PROOFS: u64 = 29_411;
pub const MAX_MERKLE_NODES: u64 = 15;
pub const MAX_ADDITIONAL_INPUTS: u64 = 65535;
pub const MAX_NESTED_FILE: u64 = 500 * 1024 * 1024;
pub const MAX_CANONICAL_URLS: u64 = 16;
pub const MAX_URL_LEN: u64 = 255;

fn mssmt_proof(v: &[u8]) -> Result<CompressedProof> {
    CompressedProof::decode(v).map_err(|e| ErrorKind::from(e).into())
}

fn read_bool(v: &[u8]) -> Result<bool> {
    match exact(v, |r| r.u8())? {
        0 => Ok(false),
        1 => Ok(true),
        x => invalid(format!("bool byte {x} (want 0 or 1)")),
    }
}

/// A tapscript sibling or partial tree (spec §2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapscriptPreimage {
    Leaf { leaf_version: u8, script: Vec<u8> },
    Branch([u8; 64]),
}

impl TapscriptPreimage {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        let ty = r.u8().within("sibling type")?;
        match ty {
            0 => {
                let leaf_version = r.u8()?;
                let n = read_compact_size(&mut r).within("script length")?;
                let script = r.take(n).within("script")?.to_vec();
                r.finish()?;
                Ok(TapscriptPreimage::Leaf {
                    leaf_version,
                    script,
                })
            }
            1 => {
                let rest = r.take(r.remaining() as u64)?;
                let a: [u8; 64] = rest.try_into().map_err(|_| ErrorKind::WrongLength {
                    expected: 64,
                    got: rest.len() as u64,
                })?;
                Ok(TapscriptPreimage::Branch(a))
            }
            x => invalid(format!("unknown tapscript preimage type {x}")),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            TapscriptPreimage::Leaf {
                leaf_version,
                script,
            } => {
                v.push(0);
                v.push(*leaf_version);
                write_compact_size(&mut v, script.len() as u64);
                v.extend_from_slice(script);
            }
            TapscriptPreimage::Branch(b) => {
                v.push(1);
                v.extend_from_slice(b);
            }
        }
        v
    }
}

/// Proof that a non-asset P2TR output carries no TAP commitment.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TapscriptProof {
    pub tap_preimage_1: Option<TapscriptPreimage>,
    pub tap_preimage_2: Option<TapscriptPreimage>,
    pub bip86: bool,
    pub unknown: UnknownOdd,
}

impl TapscriptProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        let mut p = TapscriptProof::default();
        if let Some(v) = s.take(1) {
            p.tap_preimage_1 = Some(TapscriptPreimage::decode(v).within("tap_preimage_1(1)")?);
        }
        if let Some(v) = s.take(3) {
            p.tap_preimage_2 = Some(TapscriptPreimage::decode(v).within("tap_preimage_2(3)")?);
        }
        p.bip86 = read_bool(s.require(4)?).within("bip86(4)")?;
        p.unknown = s.finish(Policy::Strict)?;
        Ok(p)
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        if let Some(p) = &self.tap_preimage_1 {
            w.record(1, p.encode());
        }
        if let Some(p) = &self.tap_preimage_2 {
            w.record(3, p.encode());
        }
        w.u8(4, self.bip86 as u8);
        w.finish(&self.unknown)
    }
}

/// Inner-tree proof: the asset (or its absence) in the asset commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetProof {
    pub version: u8,
    pub tap_key: [u8; 32],
    pub proof: CompressedProof,
    pub unknown: UnknownOdd,
}

impl AssetProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        Ok(AssetProof {
            version: exact(s.require(0)?, |r| r.u8()).within("version(0)")?,
            tap_key: exact(s.require(2)?, |r| r.array()).within("tap_key(2)")?,
            proof: mssmt_proof(s.require(4)?).within("proof(4)")?,
            unknown: s.finish(Policy::Strict)?,
        })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u8(0, self.version);
        w.record(2, self.tap_key.to_vec());
        w.record(4, self.proof.encode());
        w.finish(&self.unknown)
    }
}

/// Outer-tree proof: the asset commitment in the TAP commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootAssetProof {
    pub version: u8,
    pub proof: CompressedProof,
    pub unknown: UnknownOdd,
}

impl TaprootAssetProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        Ok(TaprootAssetProof {
            version: exact(s.require(0)?, |r| r.u8()).within("version(0)")?,
            proof: mssmt_proof(s.require(2)?).within("proof(2)")?,
            unknown: s.finish(Policy::Strict)?,
        })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u8(0, self.version);
        w.record(2, self.proof.encode());
        w.finish(&self.unknown)
    }
}

/// tapd's `commitment.Proof` (records 1 and 2), as used standalone in STXO
/// proof entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StxoProof {
    pub asset_proof: Option<AssetProof>,
    pub taproot_asset_proof: TaprootAssetProof,
    pub unknown: UnknownOdd,
}

fn take_commitment_core(s: &mut Stream) -> Result<(Option<AssetProof>, TaprootAssetProof)> {
    let asset_proof = match s.take(1) {
        Some(v) => Some(AssetProof::decode(v).within("asset_proof(1)")?),
        None => None,
    };
    let tap = TaprootAssetProof::decode(s.require(2)?).within("taproot_asset_proof(2)")?;
    Ok((asset_proof, tap))
}

fn write_commitment_core(w: &mut StreamWriter, a: &Option<AssetProof>, t: &TaprootAssetProof) {
    if let Some(a) = a {
        w.record(1, a.encode());
    }
    w.record(2, t.encode());
}

impl StxoProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        let (asset_proof, taproot_asset_proof) = take_commitment_core(&mut s)?;
        Ok(StxoProof {
            asset_proof,
            taproot_asset_proof,
            unknown: s.finish(Policy::Strict)?,
        })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        write_commitment_core(&mut w, &self.asset_proof, &self.taproot_asset_proof);
        w.finish(&self.unknown)
    }
}

/// Proof of an output's TAP commitment (spec §2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentProof {
    pub asset_proof: Option<AssetProof>,
    pub taproot_asset_proof: TaprootAssetProof,
    pub tap_sibling_preimage: Option<TapscriptPreimage>,
    /// STXO proofs keyed by the 33-byte burn key, in wire order.
    pub stxo_proofs: Vec<(PubKey, StxoProof)>,
    pub unknown: UnknownOdd,
}

impl CommitmentProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        let (asset_proof, taproot_asset_proof) = take_commitment_core(&mut s)?;
        let tap_sibling_preimage = match s.take(5) {
            Some(v) => Some(TapscriptPreimage::decode(v).within("tap_sibling_preimage(5)")?),
            None => None,
        };
        let stxo_proofs = match s.take(7) {
            Some(v) => exact(v, |r| {
                let n = r.count(MAX_TAPROOT_PROOFS, 34)?;
                let mut out: Vec<(PubKey, StxoProof)> = Vec::with_capacity(n);
                for i in 0..n {
                    let k = PubKey::read(r).within(format!("entry {i} key"))?;
                    let b = r.var_bytes(MAX_P2P_RECORD).within(format!("entry {i}"))?;
                    if out.iter().any(|(ok, _)| *ok == k) {
                        return invalid(format!("duplicate STXO key {k}"));
                    }
                    out.push((k, StxoProof::decode(b).within(format!("entry {i}"))?));
                }
                Ok(out)
            })
            .within("stxo_proofs(7)")?,
            None => Vec::new(),
        };
        Ok(CommitmentProof {
            asset_proof,
            taproot_asset_proof,
            tap_sibling_preimage,
            stxo_proofs,
            unknown: s.finish(Policy::Strict)?,
        })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        write_commitment_core(&mut w, &self.asset_proof, &self.taproot_asset_proof);
        if let Some(p) = &self.tap_sibling_preimage {
            w.record(5, p.encode());
        }
        if !self.stxo_proofs.is_empty() {
            let mut v = Vec::new();
            write_bigsize(&mut v, self.stxo_proofs.len() as u64);
            for (k, p) in &self.stxo_proofs {
                v.extend_from_slice(&k.0);
                write_var_bytes(&mut v, &p.encode());
            }
            w.record(7, v);
        }
        w.finish(&self.unknown)
    }
}

/// Proof about one output of the anchor transaction (spec §2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaprootProof {
    pub output_index: u32,
    pub internal_key: PubKey,
    pub commitment_proof: Option<CommitmentProof>,
    pub tapscript_proof: Option<TapscriptProof>,
    pub unknown: UnknownOdd,
}

impl TaprootProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        let output_index = exact(s.require(0)?, |r| r.u32_be()).within("output_index(0)")?;
        let internal_key = exact(s.require(2)?, PubKey::read).within("internal_key(2)")?;
        let commitment_proof = match s.take(3) {
            Some(v) => Some(CommitmentProof::decode(v).within("commitment_proof(3)")?),
            None => None,
        };
        let tapscript_proof = match s.take(5) {
            Some(v) => Some(TapscriptProof::decode(v).within("tapscript_proof(5)")?),
            None => None,
        };
        if commitment_proof.is_some() && tapscript_proof.is_some() {
            return invalid("taproot proof carries both a commitment proof and a tapscript proof");
        }
        Ok(TaprootProof {
            output_index,
            internal_key,
            commitment_proof,
            tapscript_proof,
            unknown: s.finish(Policy::Strict)?,
        })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u32(0, self.output_index);
        w.record(2, self.internal_key.0.to_vec());
        if let Some(c) = &self.commitment_proof {
            w.record(3, c.encode());
        } else if let Some(t) = &self.tapscript_proof {
            w.record(5, t.encode());
        }
        w.finish(&self.unknown)
    }
}

/// Merkle path of the anchor tx in its block (spec §2.6).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TxMerkleProof {
    /// Sibling hashes, internal byte order, leaf level first.
    pub nodes: Vec<[u8; 32]>,
    /// `true` = the current hash is on the left (sibling on the right).
    pub bits: Vec<bool>,
}

impl TxMerkleProof {
    pub fn read(r: &mut Reader) -> Result<Self> {
        let n = r.bigsize()?;
        if n > MAX_MERKLE_NODES {
            return Err(ErrorKind::CountOverCap {
                count: n,
                cap: MAX_MERKLE_NODES,
            }
            .into());
        }
        let n = n as usize;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            nodes.push(r.array()?);
        }
        let packed = r.take(n.div_ceil(8) as u64)?;
        let mut bits = Vec::with_capacity(n);
        for i in 0..n {
            bits.push((packed[i / 8] >> (i % 8)) & 1 == 1);
        }
        // Padding bits must be zero, or the encoding is not canonical.
        for (i, byte) in packed.iter().enumerate() {
            let used = n.saturating_sub(i * 8).min(8);
            if used < 8 && byte >> used != 0 {
                return invalid("non-zero padding bits in merkle proof");
            }
        }
        Ok(TxMerkleProof { nodes, bits })
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        write_bigsize(&mut v, self.nodes.len() as u64);
        for n in &self.nodes {
            v.extend_from_slice(n);
        }
        let mut packed = vec![0u8; self.bits.len().div_ceil(8)];
        for (i, b) in self.bits.iter().enumerate() {
            if *b {
                packed[i / 8] |= 1 << (i % 8);
            }
        }
        v.extend_from_slice(&packed);
        v
    }

    /// The merkle root implied for `txid` (internal order).
    pub fn root(&self, txid: [u8; 32]) -> [u8; 32] {
        use bitcoin::hashes::sha256d;
        let mut cur = txid;
        for (node, bit) in self.nodes.iter().zip(&self.bits) {
            let mut buf = [0u8; 64];
            if *bit {
                buf[..32].copy_from_slice(&cur);
                buf[32..].copy_from_slice(node);
            } else {
                buf[..32].copy_from_slice(node);
                buf[32..].copy_from_slice(&cur);
            }
            cur = sha256d::Hash::hash(&buf).to_byte_array();
        }
        cur
    }
}

/// Asset metadata revealed at genesis (spec §2.7).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MetaReveal {
    pub meta_type: u8,
    pub data: Vec<u8>,
    pub decimal_display: Option<u32>,
    pub universe_commitments: bool,
    pub canonical_universes: Vec<String>,
    pub delegation_key: Option<PubKey>,
    pub unknown: UnknownOdd,
}

impl MetaReveal {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_META_DATA)?;
        let meta_type = exact(s.require(0)?, |r| r.u8()).within("type(0)")?;
        let data = s.require(2)?.to_vec();
        let mut m = MetaReveal {
            meta_type,
            data,
            ..Default::default()
        };
        if let Some(v) = s.take(5) {
            m.decimal_display = Some(exact(v, |r| r.u32_be()).within("decimal_display(5)")?);
        }
        if let Some(v) = s.take(7) {
            m.universe_commitments = read_bool(v).within("universe_commitments(7)")?;
        }
        if let Some(v) = s.take(9) {
            m.canonical_universes = exact(v, |r| {
                let n = r.count(MAX_CANONICAL_URLS, 1)?;
                let mut urls = Vec::with_capacity(n);
                for i in 0..n {
                    let u = r.var_bytes(MAX_URL_LEN).within(format!("url {i}"))?;
                    urls.push(String::from_utf8(u.to_vec()).map_err(|_| {
                        DecodeError::new(ErrorKind::Invalid(format!("url {i} is not UTF-8")))
                    })?);
                }
                Ok(urls)
            })
            .within("canonical_universes(9)")?;
        }
        if let Some(v) = s.take(11) {
            m.delegation_key = Some(exact(v, PubKey::read).within("delegation_key(11)")?);
        }
        m.unknown = s.finish(Policy::Strict)?;
        Ok(m)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u8(0, self.meta_type);
        w.record(2, self.data.clone());
        if let Some(d) = self.decimal_display {
            w.u32(5, d);
        }
        if self.universe_commitments {
            w.u8(7, 1);
        }
        if !self.canonical_universes.is_empty() {
            let mut v = Vec::new();
            write_bigsize(&mut v, self.canonical_universes.len() as u64);
            for u in &self.canonical_universes {
                write_var_bytes(&mut v, u.as_bytes());
            }
            w.record(9, v);
        }
        if let Some(k) = &self.delegation_key {
            w.record(11, k.0.to_vec());
        }
        w.finish(&self.unknown)
    }

    /// SHA256 of the full TLV encoding (not of `data` alone).
    pub fn meta_hash(&self) -> [u8; 32] {
        crate::primitives::sha256(&[&self.encode()])
    }
}

/// Reveal of how the group key was derived (spec §2.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupKeyReveal {
    V0 {
        raw_key: PubKey,
        tapscript_root: Option<[u8; 32]>,
    },
    V1 {
        version: u8,
        internal_key: PubKey,
        tapscript_root: [u8; 32],
        custom_subtree_root: Option<[u8; 32]>,
    },
}

impl GroupKeyReveal {
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() <= 65 {
            let mut r = Reader::new(b);
            let raw_key = PubKey::read(&mut r).within("raw_key")?;
            let tapscript_root = match r.remaining() {
                0 => None,
                32 => Some(r.array()?),
                n => {
                    return invalid(format!(
                        "group key reveal V0 root of {n} bytes (want 0 or 32)"
                    ))
                }
            };
            return Ok(GroupKeyReveal::V0 {
                raw_key,
                tapscript_root,
            });
        }
        // tapd parses V1 without keeping or rejecting unknown types.
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        let version = exact(s.require(0)?, |r| r.u8()).within("version(0)")?;
        let internal_key = exact(s.require(2)?, PubKey::read).within("internal_key(2)")?;
        let tapscript_root = exact(s.require(4)?, |r| r.array()).within("tapscript_root(4)")?;
        let custom_subtree_root = match s.take(7) {
            Some(v) => Some(exact(v, |r| r.array()).within("custom_subtree_root(7)")?),
            None => None,
        };
        s.finish(Policy::Lax)?;
        Ok(GroupKeyReveal::V1 {
            version,
            internal_key,
            tapscript_root,
            custom_subtree_root,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            GroupKeyReveal::V0 {
                raw_key,
                tapscript_root,
            } => {
                let mut v = raw_key.0.to_vec();
                if let Some(r) = tapscript_root {
                    v.extend_from_slice(r);
                }
                v
            }
            GroupKeyReveal::V1 {
                version,
                internal_key,
                tapscript_root,
                custom_subtree_root,
            } => {
                let mut w = StreamWriter::new();
                w.u8(0, *version);
                w.record(2, internal_key.0.to_vec());
                w.record(4, tapscript_root.to_vec());
                if let Some(c) = custom_subtree_root {
                    w.record(7, c.to_vec());
                }
                w.finish(&UnknownOdd::new())
            }
        }
    }
}

/// The anchor transaction: the bytes as received, and parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorTx {
    pub raw: Vec<u8>,
    pub tx: Transaction,
}

impl AnchorTx {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let tx: Transaction = bitcoin::consensus::deserialize(b)
            .map_err(|e| DecodeError::new(ErrorKind::BadTx(e.to_string())))?;
        Ok(AnchorTx {
            raw: b.to_vec(),
            tx,
        })
    }
    pub fn txid(&self) -> Txid {
        self.tx.compute_txid()
    }
}

/// The 80-byte block header, as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader(pub [u8; 80]);

impl BlockHeader {
    pub fn parse(&self) -> Result<bitcoin::block::Header> {
        bitcoin::consensus::deserialize(&self.0)
            .map_err(|e| DecodeError::new(ErrorKind::Invalid(e.to_string())))
    }
    pub fn merkle_root(&self) -> [u8; 32] {
        let mut m = [0u8; 32];
        m.copy_from_slice(&self.0[36..68]);
        m
    }
    pub fn block_hash(&self) -> bitcoin::BlockHash {
        bitcoin::BlockHash::from_byte_array(
            bitcoin::hashes::sha256d::Hash::hash(&self.0).to_byte_array(),
        )
    }
}

/// A single transition proof (spec §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    pub version: u32,
    pub prev_out: OutPoint,
    pub block_header: BlockHeader,
    pub anchor_tx: AnchorTx,
    pub tx_merkle_proof: TxMerkleProof,
    pub asset: Asset,
    pub inclusion_proof: TaprootProof,
    pub exclusion_proofs: Vec<TaprootProof>,
    pub split_root_proof: Option<TaprootProof>,
    pub meta_reveal: Option<MetaReveal>,
    pub additional_inputs: Vec<File>,
    pub challenge_witness: Option<Vec<Vec<u8>>>,
    pub block_height: u32,
    pub genesis_reveal: Option<Genesis>,
    pub group_key_reveal: Option<GroupKeyReveal>,
    pub alt_leaves: Vec<Asset>,
    pub unknown: UnknownOdd,
}

impl Proof {
    /// Decodes `"TAPP" || TLV stream`.
    pub fn decode(b: &[u8]) -> Result<Self> {
        Self::decode_inner(b).within("proof")
    }

    fn decode_inner(b: &[u8]) -> Result<Self> {
        if b.len() < 4 || b[..4] != PROOF_MAGIC {
            return Err(ErrorKind::BadMagic {
                expected: "TAPP",
                got: hex::encode(&b[..b.len().min(4)]),
            }
            .into());
        }
        let mut s = Stream::parse(&b[4..], u64::MAX)?;
        let version = exact(s.require(0)?, |r| r.u32_be()).within("version(0)")?;
        let prev_out = exact(s.require(2)?, read_outpoint).within("prev_out(2)")?;
        let header = s.require(4)?;
        let block_header = BlockHeader(header.try_into().map_err(|_| {
            DecodeError::new(ErrorKind::WrongLength {
                expected: 80,
                got: header.len() as u64,
            })
            .within("block_header(4)")
        })?);
        let tx = s
            .take_capped(6, MAX_ANCHOR_TX)
            .within("anchor_tx(6)")?
            .ok_or(ErrorKind::MissingRecord(6))?;
        let anchor_tx = AnchorTx::decode(tx).within("anchor_tx(6)")?;
        let mp = s
            .take_capped(8, MAX_P2P_RECORD)
            .within("tx_merkle_proof(8)")?
            .ok_or(ErrorKind::MissingRecord(8))?;
        let tx_merkle_proof = exact(mp, TxMerkleProof::read).within("tx_merkle_proof(8)")?;
        let asset = Asset::decode(s.require(10)?).within("asset(10)")?;
        let ip = s
            .take_capped(12, MAX_P2P_RECORD)
            .within("inclusion_proof(12)")?
            .ok_or(ErrorKind::MissingRecord(12))?;
        let inclusion_proof = TaprootProof::decode(ip).within("inclusion_proof(12)")?;
        let exclusion_proofs = match s.take(13) {
            Some(v) => exact(v, |r| {
                let n = r.count(MAX_TAPROOT_PROOFS, 1)?;
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let b = r.var_bytes(MAX_P2P_RECORD).within(format!("{i}"))?;
                    out.push(TaprootProof::decode(b).within(format!("{i}"))?);
                }
                Ok(out)
            })
            .within("exclusion_proofs(13)")?,
            None => Vec::new(),
        };
        let split_root_proof = match s
            .take_capped(15, MAX_P2P_RECORD)
            .within("split_root_proof(15)")?
        {
            Some(v) => Some(TaprootProof::decode(v).within("split_root_proof(15)")?),
            None => None,
        };
        let meta_reveal = match s
            .take_capped(17, MAX_META_DATA + 1024)
            .within("meta_reveal(17)")?
        {
            Some(v) => Some(MetaReveal::decode(v).within("meta_reveal(17)")?),
            None => None,
        };
        let additional_inputs = match s.take(19) {
            Some(v) => exact(v, |r| {
                let n = r.count(MAX_ADDITIONAL_INPUTS, 1)?;
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let b = r.var_bytes(MAX_NESTED_FILE).within(format!("{i}"))?;
                    out.push(File::decode(b).within(format!("{i}"))?);
                }
                Ok(out)
            })
            .within("additional_inputs(19)")?,
            None => Vec::new(),
        };
        let challenge_witness = match s.take(21) {
            Some(v) => Some(exact(v, read_tx_witness).within("challenge_witness(21)")?),
            None => None,
        };
        let block_height = exact(s.require(22)?, |r| r.u32_be()).within("block_height(22)")?;
        let genesis_reveal = match s.take(23) {
            Some(v) => Some(Genesis::decode(v).within("genesis_reveal(23)")?),
            None => None,
        };
        let group_key_reveal = match s.take(25) {
            Some(v) => Some(GroupKeyReveal::decode(v).within("group_key_reveal(25)")?),
            None => None,
        };
        let alt_leaves = match s.take_capped(27, MAX_P2P_RECORD).within("alt_leaves(27)")? {
            Some(v) => exact(v, |r| {
                let n = r.count(v.len() as u64 / 40, 40)?;
                let mut out: Vec<Asset> = Vec::with_capacity(n);
                for i in 0..n {
                    let b = r.var_bytes(MAX_P2P_RECORD).within(format!("{i}"))?;
                    let leaf = Asset::decode_alt_leaf(b).within(format!("{i}"))?;
                    if out.iter().any(|l| l.script_key == leaf.script_key) {
                        return invalid(format!("alt leaf {i}: duplicate script key"));
                    }
                    out.push(leaf);
                }
                Ok(out)
            })
            .within("alt_leaves(27)")?,
            None => Vec::new(),
        };
        let unknown = s.finish(Policy::Strict)?;
        Ok(Proof {
            version,
            prev_out,
            block_header,
            anchor_tx,
            tx_merkle_proof,
            asset,
            inclusion_proof,
            exclusion_proofs,
            split_root_proof,
            meta_reveal,
            additional_inputs,
            challenge_witness,
            block_height,
            genesis_reveal,
            group_key_reveal,
            alt_leaves,
            unknown,
        })
    }

    /// Re-encodes the proof. Storage and hashing use the received bytes,
    /// never this (see spec §2.11); it exists for round-trip checks and for
    /// proofs we build ourselves.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u32(0, self.version);
        let mut op = Vec::with_capacity(36);
        write_outpoint(&mut op, &self.prev_out);
        w.record(2, op);
        w.record(4, self.block_header.0.to_vec());
        w.record(6, self.anchor_tx.raw.clone());
        w.record(8, self.tx_merkle_proof.encode());
        w.record(10, self.asset.encode());
        w.record(12, self.inclusion_proof.encode());
        if !self.exclusion_proofs.is_empty() {
            let mut v = Vec::new();
            write_bigsize(&mut v, self.exclusion_proofs.len() as u64);
            for p in &self.exclusion_proofs {
                write_var_bytes(&mut v, &p.encode());
            }
            w.record(13, v);
        }
        if let Some(p) = &self.split_root_proof {
            w.record(15, p.encode());
        }
        if let Some(m) = &self.meta_reveal {
            w.record(17, m.encode());
        }
        if !self.additional_inputs.is_empty() {
            let mut v = Vec::new();
            write_bigsize(&mut v, self.additional_inputs.len() as u64);
            for f in &self.additional_inputs {
                write_var_bytes(&mut v, &f.encode());
            }
            w.record(19, v);
        }
        if let Some(cw) = &self.challenge_witness {
            let mut v = Vec::new();
            write_tx_witness(&mut v, cw);
            w.record(21, v);
        }
        w.u32(22, self.block_height);
        if let Some(g) = &self.genesis_reveal {
            w.record(23, g.encode());
        }
        if let Some(g) = &self.group_key_reveal {
            w.record(25, g.encode());
        }
        if !self.alt_leaves.is_empty() {
            let mut v = Vec::new();
            write_bigsize(&mut v, self.alt_leaves.len() as u64);
            for l in &self.alt_leaves {
                write_var_bytes(&mut v, &l.encode_alt_leaf());
            }
            w.record(27, v);
        }
        let mut out = PROOF_MAGIC.to_vec();
        w.finish_into(&self.unknown, &mut out);
        out
    }

    /// The anchor outpoint: (txid of the anchor tx, inclusion output index).
    pub fn outpoint(&self) -> OutPoint {
        OutPoint {
            txid: self.anchor_tx.txid(),
            vout: self.inclusion_proof.output_index,
        }
    }
}

/// A proof decoded together with the exact bytes it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawProof {
    pub raw: Vec<u8>,
    pub proof: Proof,
}

impl RawProof {
    pub fn decode(b: &[u8]) -> Result<Self> {
        Ok(RawProof {
            proof: Proof::decode(b)?,
            raw: b.to_vec(),
        })
    }
}
