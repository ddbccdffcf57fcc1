//! tapd's wallet backup blob ("TAPBAK", UNIVERSE-RPC.md §8.1): what
//! `ExportAssetWalletBackup` returns and `ImportAssetsFromBackup` takes.
//!
//! Layout: `"TAPBAK" ‖ u32 BE version ‖ [v3: federation URLs] ‖ BigSize
//! asset count ‖ (BigSize len ‖ per-asset TLV)* ‖ SHA-256 of all before`.
//! Decoding keeps every record it does not interpret (unknown odd types) and
//! the exact asset bytes, so decode → encode gives back the input.

use crate::asset::Asset;
use crate::error::{invalid, DecodeError, ErrorKind, Result, Within};
use crate::primitives::{read_outpoint, sha256, write_outpoint, PubKey};
use crate::tlv::{exact, write_bigsize, Policy, Reader, Stream, StreamWriter, UnknownOdd};
use bitcoin::hashes::Hash as _;
use bitcoin::{OutPoint, Txid};

pub const BACKUP_MAGIC: [u8; 6] = *b"TAPBAK";
/// RAW: full proof files.
pub const VERSION_RAW: u32 = 1;
/// COMPACT: proofs stripped of chain data, plus rehydration hints.
pub const VERSION_COMPACT: u32 = 2;
/// OPTIMISTIC: no proofs; federation URLs to fetch them from.
pub const VERSION_OPTIMISTIC: u32 = 3;
pub const MAX_BACKUP_ASSETS: u64 = 1_000_000;
pub const MAX_ASSET_TLV: u64 = 100 * 1024 * 1024;
pub const MAX_FEDERATION_URLS: u64 = 100;
pub const MAX_FEDERATION_URL_LEN: u64 = 2048;

/// The script key and how the wallet derives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptKeyBackup {
    /// The tweaked key as it appears in the asset.
    pub pub_key: PubKey,
    pub family: u32,
    pub index: u32,
    /// The internal (untweaked) key, when tapd knew it.
    pub raw_pub_key: Option<PubKey>,
    /// Tapscript tweak; absent means BIP-86.
    pub tweak: Option<Vec<u8>>,
    pub unknown: UnknownOdd,
}

/// A key and its lnd key locator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDescriptorBackup {
    pub pub_key: PubKey,
    pub family: u32,
    pub index: u32,
    pub unknown: UnknownOdd,
}

/// Where a stripped proof's chain data can be found again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RehydrationHint {
    pub anchor_txid: Txid,
    pub block_height: u32,
}

/// One asset output of the wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetBackup {
    pub asset: Asset,
    /// The asset record's bytes exactly as read (or as encoded once).
    pub asset_raw: Vec<u8>,
    pub anchor_outpoint: OutPoint,
    pub anchor_block_height: u32,
    pub script_key: Option<ScriptKeyBackup>,
    pub anchor_internal_key: Option<KeyDescriptorBackup>,
    /// v1: a full TAPF proof file.
    pub proof_file: Option<Vec<u8>>,
    pub anchor_pk_script: Option<Vec<u8>>,
    /// v2: a TAPF file whose proofs lack types 4, 6, 8 and 22.
    pub stripped_proof_file: Option<Vec<u8>>,
    /// v2: one hint per proof of the stripped file.
    pub rehydration_hints: Option<Vec<RehydrationHint>>,
    pub unknown: UnknownOdd,
}

/// A whole wallet backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletBackup {
    pub version: u32,
    /// Only in v3.
    pub federation_urls: Vec<String>,
    pub assets: Vec<AssetBackup>,
}

fn u32_record(v: &[u8]) -> Result<u32> {
    exact(v, |r| r.u32_be())
}

fn key_record(v: &[u8]) -> Result<PubKey> {
    let k = exact(v, PubKey::read)?;
    // tapd parses these with btcec, which has no "zero key".
    if k.is_zero() {
        return Err(ErrorKind::BadKey.into());
    }
    Ok(k)
}

impl ScriptKeyBackup {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_ASSET_TLV)?;
        let pub_key = key_record(s.require(0)?).within("pub_key(0)")?;
        let family = u32_record(s.require(1)?).within("family(1)")?;
        let index = u32_record(s.require(2)?).within("index(2)")?;
        let raw_pub_key = match s.take(3) {
            Some(v) => Some(key_record(v).within("raw_pub_key(3)")?),
            None => None,
        };
        let tweak = s.take(4).map(<[u8]>::to_vec);
        Ok(ScriptKeyBackup {
            pub_key,
            family,
            index,
            raw_pub_key,
            tweak,
            unknown: s.finish(Policy::Strict)?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.record(0, self.pub_key.0.to_vec());
        w.u32(1, self.family).u32(2, self.index);
        if let Some(k) = &self.raw_pub_key {
            w.record(3, k.0.to_vec());
        }
        if let Some(t) = &self.tweak {
            w.record(4, t.clone());
        }
        w.finish(&self.unknown)
    }
}

impl KeyDescriptorBackup {
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_ASSET_TLV)?;
        let pub_key = key_record(s.require(0)?).within("pub_key(0)")?;
        let family = u32_record(s.require(1)?).within("family(1)")?;
        let index = u32_record(s.require(2)?).within("index(2)")?;
        Ok(KeyDescriptorBackup {
            pub_key,
            family,
            index,
            unknown: s.finish(Policy::Strict)?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.record(0, self.pub_key.0.to_vec());
        w.u32(1, self.family).u32(2, self.index);
        w.finish(&self.unknown)
    }
}

/// Hints: `BigSize count ‖ (32-byte txid ‖ u32 BE height)*`.
pub fn decode_hints(b: &[u8]) -> Result<Vec<RehydrationHint>> {
    exact(b, |r| {
        let n = r.count(MAX_BACKUP_ASSETS, 36)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let anchor_txid = Txid::from_byte_array(r.array()?);
            let block_height = r.u32_be()?;
            out.push(RehydrationHint {
                anchor_txid,
                block_height,
            });
        }
        Ok(out)
    })
}

pub fn encode_hints(hints: &[RehydrationHint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + hints.len() * 36);
    write_bigsize(&mut out, hints.len() as u64);
    for h in hints {
        out.extend_from_slice(h.anchor_txid.as_byte_array());
        out.extend_from_slice(&h.block_height.to_be_bytes());
    }
    out
}

impl AssetBackup {
    /// An entry for `asset`, encoding its bytes once.
    pub fn new(asset: Asset, anchor_outpoint: OutPoint, anchor_block_height: u32) -> Self {
        AssetBackup {
            asset_raw: asset.encode(),
            asset,
            anchor_outpoint,
            anchor_block_height,
            script_key: None,
            anchor_internal_key: None,
            proof_file: None,
            anchor_pk_script: None,
            stripped_proof_file: None,
            rehydration_hints: None,
            unknown: UnknownOdd::new(),
        }
    }

    /// A RAW (v1) entry for the output a proof file ends at: the asset,
    /// anchor outpoint, height and pkScript come from its last proof.
    pub fn from_proof_file(
        file: &crate::File,
        script_key: Option<ScriptKeyBackup>,
        anchor_internal_key: Option<KeyDescriptorBackup>,
    ) -> Result<Self> {
        let last = file
            .last_proof()?
            .ok_or_else(|| DecodeError::new(ErrorKind::Invalid("empty proof file".into())))?;
        let anchor = OutPoint {
            txid: last.anchor_tx.txid(),
            vout: last.inclusion_proof.output_index,
        };
        let pk_script = last
            .anchor_tx
            .tx
            .output
            .get(anchor.vout as usize)
            .map(|o| o.script_pubkey.to_bytes())
            .ok_or_else(|| {
                DecodeError::new(ErrorKind::Invalid(format!(
                    "anchor output {} not in the anchor transaction",
                    anchor.vout
                )))
            })?;
        let mut e = AssetBackup::new(last.asset, anchor, last.block_height);
        e.script_key = script_key;
        e.anchor_internal_key = anchor_internal_key;
        e.proof_file = Some(file.encode());
        e.anchor_pk_script = Some(pk_script);
        Ok(e)
    }

    /// Decodes the per-asset TLV stream (without its length prefix).
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_ASSET_TLV)?;
        let asset_raw = s.require(0)?;
        let asset = Asset::decode(asset_raw).within("asset(0)")?;
        let anchor_outpoint = exact(s.require(1)?, read_outpoint).within("anchor_outpoint(1)")?;
        let anchor_block_height = u32_record(s.require(2)?).within("anchor_block_height(2)")?;
        let script_key = match s.take(3) {
            Some(v) => Some(ScriptKeyBackup::decode(v).within("script_key(3)")?),
            None => None,
        };
        let anchor_internal_key = match s.take(4) {
            Some(v) => Some(KeyDescriptorBackup::decode(v).within("anchor_internal_key(4)")?),
            None => None,
        };
        let proof_file = s.take(5).map(<[u8]>::to_vec);
        let anchor_pk_script = s.take(6).map(<[u8]>::to_vec);
        let stripped_proof_file = s.take(7).map(<[u8]>::to_vec);
        let rehydration_hints = match s.take(9) {
            Some(v) => Some(decode_hints(v).within("rehydration_hints(9)")?),
            None => None,
        };
        Ok(AssetBackup {
            asset,
            asset_raw: asset_raw.to_vec(),
            anchor_outpoint,
            anchor_block_height,
            script_key,
            anchor_internal_key,
            proof_file,
            anchor_pk_script,
            stripped_proof_file,
            rehydration_hints,
            unknown: s.finish(Policy::Strict)?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.record(0, self.asset_raw.clone());
        let mut op = Vec::with_capacity(36);
        write_outpoint(&mut op, &self.anchor_outpoint);
        w.record(1, op);
        w.u32(2, self.anchor_block_height);
        if let Some(k) = &self.script_key {
            w.record(3, k.encode());
        }
        if let Some(k) = &self.anchor_internal_key {
            w.record(4, k.encode());
        }
        if let Some(f) = &self.proof_file {
            w.record(5, f.clone());
        }
        if let Some(p) = &self.anchor_pk_script {
            w.record(6, p.clone());
        }
        if let Some(f) = &self.stripped_proof_file {
            w.record(7, f.clone());
        }
        if let Some(h) = &self.rehydration_hints {
            w.record(9, encode_hints(h));
        }
        w.finish(&self.unknown)
    }
}

impl WalletBackup {
    /// Decodes and checks the trailing checksum first, as tapd does.
    pub fn decode(b: &[u8]) -> Result<Self> {
        Self::decode_inner(b).within("backup")
    }

    fn decode_inner(b: &[u8]) -> Result<Self> {
        if b.len() < BACKUP_MAGIC.len() || b[..BACKUP_MAGIC.len()] != BACKUP_MAGIC {
            return Err(ErrorKind::BadMagic {
                expected: "TAPBAK",
                got: hex::encode(&b[..b.len().min(BACKUP_MAGIC.len())]),
            }
            .into());
        }
        if b.len() < BACKUP_MAGIC.len() + 4 + 1 + 32 {
            return Err(ErrorKind::Truncated {
                needed: (BACKUP_MAGIC.len() + 4 + 1 + 32) as u64,
                available: b.len() as u64,
            }
            .into());
        }
        let (payload, sum) = b.split_at(b.len() - 32);
        if sha256(&[payload]) != sum {
            return Err(DecodeError::new(ErrorKind::Invalid(
                "checksum mismatch: the backup is corrupted or was altered".into(),
            ))
            .within("checksum"));
        }
        let mut r = Reader::new(&payload[BACKUP_MAGIC.len()..]);
        let version = r.u32_be().within("version")?;
        if !(VERSION_RAW..=VERSION_OPTIMISTIC).contains(&version) {
            return invalid(format!(
                "unsupported backup version {version} (known: 1, 2, 3)"
            ))
            .within("version");
        }
        let mut federation_urls = Vec::new();
        if version >= VERSION_OPTIMISTIC {
            let n = r
                .count(MAX_FEDERATION_URLS, 1)
                .within("federation url count")?;
            for i in 0..n {
                let u = r
                    .var_bytes(MAX_FEDERATION_URL_LEN)
                    .within(format!("federation url {i}"))?;
                let s = String::from_utf8(u.to_vec()).map_err(|_| {
                    DecodeError::new(ErrorKind::Invalid("not UTF-8".into()))
                        .within(format!("federation url {i}"))
                })?;
                federation_urls.push(s);
            }
        }
        let n = r.count(MAX_BACKUP_ASSETS, 1).within("asset count")?;
        let mut assets = Vec::with_capacity(n);
        for i in 0..n {
            let tlv = r.var_bytes(MAX_ASSET_TLV).within(format!("asset {i}"))?;
            assets.push(AssetBackup::decode(tlv).within(format!("asset {i}"))?);
        }
        r.finish()?;
        Ok(WalletBackup {
            version,
            federation_urls,
            assets,
        })
    }

    /// Encodes with the trailing checksum.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = BACKUP_MAGIC.to_vec();
        out.extend_from_slice(&self.version.to_be_bytes());
        if self.version >= VERSION_OPTIMISTIC {
            write_bigsize(&mut out, self.federation_urls.len() as u64);
            for u in &self.federation_urls {
                write_bigsize(&mut out, u.len() as u64);
                out.extend_from_slice(u.as_bytes());
            }
        }
        write_bigsize(&mut out, self.assets.len() as u64);
        for a in &self.assets {
            let tlv = a.encode();
            write_bigsize(&mut out, tlv.len() as u64);
            out.extend_from_slice(&tlv);
        }
        let sum = sha256(&[&out]);
        out.extend_from_slice(&sum);
        out
    }
}

/// Whether `b` starts like a TAPBAK blob (as opposed to an opaque,
/// encrypted backup file).
pub fn is_tapbak(b: &[u8]) -> bool {
    b.starts_with(&BACKUP_MAGIC)
}

/// Proof TLV types a COMPACT (v2) backup drops: block header, anchor tx,
/// merkle proof, block height. They are restored from the chain at import.
pub const STRIPPED_PROOF_TYPES: [u64; 4] = [4, 6, 8, 22];

/// Removes the chain data from one proof (`"TAPP" ‖ TLV`), keeping every
/// other record's bytes as they are.
pub fn strip_proof(raw: &[u8]) -> Result<Vec<u8>> {
    if !raw.starts_with(&crate::proof::PROOF_MAGIC) {
        return Err(ErrorKind::BadMagic {
            expected: "TAPP",
            got: hex::encode(&raw[..raw.len().min(4)]),
        }
        .into());
    }
    let s = Stream::parse(&raw[4..], u64::MAX)?;
    let mut out = crate::proof::PROOF_MAGIC.to_vec();
    for (t, v) in s.records() {
        if STRIPPED_PROOF_TYPES.contains(&t) {
            continue;
        }
        write_bigsize(&mut out, t);
        write_bigsize(&mut out, v.len() as u64);
        out.extend_from_slice(v);
    }
    Ok(out)
}
