//! Witness validation: the Taproot Assets VM (spec §8.3). A state transition
//! is mapped to a one-input, one-output virtual Bitcoin transaction whose
//! input commits to the spent assets and whose output commits to the new
//! asset (or its split tree); every input witness must then satisfy the
//! spent asset's script key under BIP-341/342, exactly as a Bitcoin input
//! would. Scripts run in Bitcoin Core's consensus library
//! (`bitcoinconsensus`), so the script rules are Core's own.

use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash as _;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use std::collections::BTreeMap;
use tapvault_codec::derived::NUMS_KEY;
use tapvault_codec::primitives::sha256;
use tapvault_codec::{Asset, PrevId};
use tapvault_mssmt::{compacted_leaf_hash, LeafUpdate, MemTree, Node};

/// Why a state transition is invalid. The messages start with tapd's own
/// wording, so an operator can match them against tapd's logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error("missing asset split commitment root")]
    NoSplitCommitment,
    #[error("asset id mismatch")]
    IdMismatch,
    #[error("asset type mismatch")]
    TypeMismatch,
    #[error("asset script key mismatch within state transition")]
    ScriptKeyMismatch,
    #[error("asset amount mismatch: {0}")]
    AmountMismatch(String),
    #[error("invalid genesis state transition")]
    InvalidGenesisStateTransition,
    #[error("invalid transfer asset witness: {0}")]
    InvalidTransferWitness(String),
    #[error("invalid split asset type")]
    InvalidSplitAssetType,
    #[error("invalid split commitment asset witness")]
    InvalidSplitCommitmentWitness,
    #[error("invalid split commitment proof")]
    InvalidSplitCommitmentProof,
    #[error("invalid zero-value root asset")]
    InvalidRootAsset,
    #[error("un-finalized asset: {0}")]
    UnfinalizedAsset(String),
    #[error("missing asset input(s): {0}")]
    NoInputs(String),
    #[error("asset input(s) mismatch")]
    InputMismatch,
    #[error("invalid script version")]
    InvalidScriptVersion,
    #[error("{0}")]
    Other(String),
}

/// A split output committed to in the new (root) asset's split tree.
#[derive(Debug, Clone)]
pub struct SplitAsset {
    pub asset: Asset,
    pub output_index: u32,
}

/// What lock-time checks need from the chain.
pub trait ChainLookup {
    /// Height of the block that confirmed `txid`.
    fn tx_block_height(&self, txid: &Txid) -> Option<u32>;
    /// Median time past (Unix seconds) at `height`.
    fn mean_block_timestamp(&self, height: u32) -> Option<i64>;
}

/// Lock times are validated only with a block height and a chain to ask
/// (without them they are skipped; the script's own CLTV/CSV opcodes still
/// run against the virtual tx). A lock the chain cannot answer for (a
/// median time, say, offline) is listed in `unchecked` and skipped.
pub struct TimeLocks<'a> {
    pub block_height: u32,
    pub chain: &'a dyn ChainLookup,
    pub unchecked: std::cell::RefCell<Vec<String>>,
}

impl<'a> TimeLocks<'a> {
    pub fn new(block_height: u32, chain: &'a dyn ChainLookup) -> Self {
        TimeLocks {
            block_height,
            chain,
            unchecked: Default::default(),
        }
    }
}

fn is_unspendable(a: &Asset) -> bool {
    a.script_key.0 == NUMS_KEY && a.amount == 0
}

fn leaf(a: &Asset) -> Result<Node, VmError> {
    let bytes = a
        .leaf_bytes()
        .map_err(|e| VmError::Other(format!("asset leaf: {e}")))?;
    Ok(Node::leaf(&bytes, a.amount))
}

fn p2tr(x_only: &[u8; 32]) -> ScriptBuf {
    let mut s = Vec::with_capacity(34);
    s.extend_from_slice(&[0x51, 0x20]);
    s.extend_from_slice(x_only);
    ScriptBuf::from_bytes(s)
}

type InputSet = BTreeMap<[u8; 32], (PrevId, Asset)>;

/// The spent assets keyed by their PrevID's hash.
fn input_set(inputs: &[(PrevId, Asset)]) -> InputSet {
    inputs
        .iter()
        .map(|(id, a)| (id.hash(), (*id, a.clone())))
        .collect()
}

/// Checks the state transition that created `new` (with `splits`, the split
/// outputs it commits to) from `inputs` (each spent asset by its PrevID).
pub fn execute(
    new: &Asset,
    splits: &[SplitAsset],
    inputs: &[(PrevId, Asset)],
    locks: Option<&TimeLocks<'_>>,
) -> Result<(), VmError> {
    let mut set = input_set(inputs);
    if new.has_genesis_witness() {
        if !splits.is_empty() || !set.is_empty() || new.group_key.is_some() {
            return Err(VmError::InvalidGenesisStateTransition);
        }
        return Ok(());
    }
    let group_genesis = new.has_genesis_witness_for_group();
    if group_genesis {
        if !splits.is_empty() || !set.is_empty() {
            return Err(VmError::InvalidGenesisStateTransition);
        }
        let zero = new.prev_witnesses[0].prev_id.unwrap_or(PrevId::zero());
        set.insert(zero.hash(), (zero, new.clone()));
    }
    // tapd checks splits smallest first; that order decides which error a
    // doubly broken transition reports.
    let mut ordered: Vec<&SplitAsset> = splits.iter().collect();
    ordered.sort_by_key(|s| s.asset.amount);
    for s in ordered {
        validate_split(new, s, &set)?;
    }
    validate_state_transition(new, &set, group_genesis, locks)
}

fn lookup<'a>(set: &'a InputSet, id: &PrevId) -> Option<&'a Asset> {
    set.get(&id.hash()).map(|(_, a)| a)
}

fn validate_split(new: &Asset, split: &SplitAsset, set: &InputSet) -> Result<(), VmError> {
    if new.asset_type != split.asset.asset_type {
        return Err(VmError::InvalidSplitAssetType);
    }
    let Some(root) = new.split_commitment_root else {
        return Err(VmError::NoSplitCommitment);
    };
    if !split.asset.has_split_commitment_witness() {
        return Err(VmError::InvalidSplitCommitmentWitness);
    }
    let root_w = new
        .prev_witnesses
        .first()
        .ok_or_else(|| VmError::NoInputs("prev witness zero".into()))?;
    let root_id = root_w
        .prev_id
        .ok_or_else(|| VmError::NoInputs("nil prev_id on root witness".into()))?;
    let prev = lookup(set, &root_id)
        .ok_or_else(|| VmError::NoInputs(format!("no input for the root witness {root_id:?}")))?;
    matches_asset_params(&split.asset, prev, &root_id)?;
    if new.amount == 0 && !is_unspendable(new) {
        return Err(VmError::InvalidRootAsset);
    }
    if split.asset.amount == 0 && !is_unspendable(&split.asset) {
        return Err(VmError::InvalidRootAsset);
    }
    let sw = &split.asset.prev_witnesses[0];
    let Some(sc) = &sw.split_commitment else {
        return Err(VmError::InvalidSplitCommitmentWitness);
    };
    let key = sha256(&[
        &split.output_index.to_be_bytes(),
        &split.asset.id(),
        &split.asset.script_key.x_only(),
    ]);
    let mut bare = split.asset.clone();
    bare.prev_witnesses[0].split_commitment = None;
    bare.lock_time = new.lock_time;
    bare.relative_lock_time = new.relative_lock_time;
    let proof = sc
        .proof
        .decompress()
        .map_err(|_| VmError::InvalidSplitCommitmentProof)?;
    let want = Node {
        hash: root.hash,
        sum: root.sum,
    };
    proof
        .verify(&key, leaf(&bare)?, &want)
        .map_err(|_| VmError::InvalidSplitCommitmentProof)
}

fn matches_asset_params(new: &Asset, prev: &Asset, prev_id: &PrevId) -> Result<(), VmError> {
    if prev_id.script_key != prev.script_key {
        return Err(VmError::ScriptKeyMismatch);
    }
    let same_genesis = prev_id.asset_id == prev.id()
        || match (&new.group_key, &prev.group_key) {
            (Some(a), Some(b)) => a == b && new.genesis.tag == prev.genesis.tag,
            _ => false,
        };
    if !same_genesis {
        return Err(VmError::IdMismatch);
    }
    if new.asset_type != prev.asset_type {
        return Err(VmError::TypeMismatch);
    }
    Ok(())
}

/// The virtual transaction (witness-less) and the input tree's root.
fn virtual_tx(new: &Asset, set: &InputSet) -> Result<(Transaction, Node), VmError> {
    let input_root = if new.group_key.is_some() && new.is_genesis() {
        // A group anchor signs over itself, group witness stripped, under
        // the zero PrevID.
        let mut bare = new.clone();
        bare.prev_witnesses[0].tx_witness.clear();
        compacted_leaf_hash(&PrevId::zero().hash(), leaf(&bare)?, 0)
            .map_err(|e| VmError::Other(e.to_string()))?
    } else {
        let mut tree = MemTree::new();
        let mut ups = Vec::new();
        let mut consumed = std::collections::BTreeSet::new();
        for w in &new.prev_witnesses {
            let id = w
                .prev_id
                .ok_or_else(|| VmError::NoInputs("prevID is nil".into()))?;
            let prev = lookup(set, &id).ok_or_else(|| {
                VmError::NoInputs(format!(
                    "unable to make virtual txIn: no input {}:{}",
                    id.out_point,
                    hex::encode(id.asset_id)
                ))
            })?;
            ups.push(LeafUpdate {
                key: id.hash(),
                leaf: leaf(prev)?,
            });
            consumed.insert(id.hash());
        }
        if consumed.len() != set.len() {
            return Err(VmError::InputMismatch);
        }
        tree.apply(ups)
            .map_err(|e| VmError::Other(format!("input tree: {e}")))?
    };
    let mut pre = input_root.hash.to_vec();
    pre.extend_from_slice(&input_root.sum.to_be_bytes());
    let prevout = OutPoint {
        txid: Txid::from_byte_array(sha256(&[&pre])),
        vout: 0,
    };
    let output = match &new.split_commitment_root {
        Some(r) => TxOut {
            value: Amount::from_sat(r.sum),
            script_pubkey: p2tr(&r.hash),
        },
        None => {
            let gk = new.group_key.map(|g| g.x_only()).unwrap_or([0; 32]);
            let key = sha256(&[&gk, &new.id(), &new.script_key.x_only()]);
            let mut bare = new.clone();
            for w in &mut bare.prev_witnesses {
                w.tx_witness.clear();
            }
            let root = compacted_leaf_hash(&key, leaf(&bare)?, 0)
                .map_err(|e| VmError::Other(e.to_string()))?;
            TxOut {
                value: Amount::from_sat(new.amount),
                script_pubkey: p2tr(&root.hash),
            }
        }
    };
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prevout,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ZERO,
            witness: Witness::new(),
        }],
        output: vec![output],
    };
    Ok((tx, input_root))
}

fn validate_state_transition(
    new: &Asset,
    set: &InputSet,
    group_genesis: bool,
    locks: Option<&TimeLocks<'_>>,
) -> Result<(), VmError> {
    if new.prev_witnesses.is_empty() {
        return Err(VmError::NoInputs("prev witness zero".into()));
    }
    if new.asset_type == 1 && new.prev_witnesses.len() > 1 {
        return Err(VmError::InvalidTransferWitness(
            "collectible has more than one prev input".into(),
        ));
    }
    let (vtx, input_root) = virtual_tx(new, set)?;
    if input_root.sum != vtx.output[0].value.to_sat() {
        return Err(VmError::AmountMismatch(format!(
            "expected output value={}, got={}",
            input_root.sum,
            vtx.output[0].value.to_sat()
        )));
    }
    for (idx, w) in new.prev_witnesses.iter().enumerate() {
        let id = w
            .prev_id
            .ok_or_else(|| VmError::NoInputs(format!("nil prev_id at witness_idx={idx}")))?;
        let prev = lookup(set, &id)
            .ok_or_else(|| VmError::NoInputs(format!("no prev asset for input {idx}")))?;
        if let Some(l) = locks {
            check_lock_time(new, &id, l)?;
        }
        if prev.script_version != 0 {
            return Err(VmError::InvalidScriptVersion);
        }
        if w.tx_witness.is_empty() {
            return Err(VmError::InvalidTransferWitness(
                "input has no witness".into(),
            ));
        }
        if !group_genesis {
            matches_asset_params(new, prev, &id)?;
        }
        let (mut tx, spent) = input_tx(&vtx, new, idx, prev, group_genesis)?;
        tx.input[0].witness = Witness::from_slice(&w.tx_witness);
        run_script(&tx, &spent)?;
    }
    Ok(())
}

/// Input `idx`'s copy of the virtual tx (its lock times, its vout) and the
/// output it spends: what that input's witness signs and runs against.
fn input_tx(
    vtx: &Transaction,
    new: &Asset,
    idx: usize,
    prev: &Asset,
    group_genesis: bool,
) -> Result<(Transaction, TxOut), VmError> {
    let key = if group_genesis {
        prev.group_key
            .ok_or_else(|| VmError::Other("group anchor without a group key".into()))?
            .x_only()
    } else {
        prev.script_key.x_only()
    };
    let spent = TxOut {
        value: Amount::from_sat(prev.amount),
        script_pubkey: p2tr(&key),
    };
    let mut tx = vtx.clone();
    tx.lock_time = LockTime::from_consensus(new.lock_time as u32);
    tx.input[0].previous_output.vout = idx as u32;
    tx.input[0].sequence = Sequence(new.relative_lock_time as u32);
    Ok((tx, spent))
}

/// The BIP-341 key-spend sighash (SIGHASH_DEFAULT) input `idx` of `new`'s
/// transition from `inputs` signs: what a forged transfer's owner signs.
#[cfg(feature = "forge")]
pub(crate) fn key_spend_sighash(
    new: &Asset,
    inputs: &[(PrevId, Asset)],
    idx: usize,
) -> Result<[u8; 32], VmError> {
    use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
    let (vtx, _) = virtual_tx(new, &input_set(inputs))?;
    let (_, prev) = inputs
        .get(idx)
        .ok_or_else(|| VmError::NoInputs(format!("no input {idx}")))?;
    let (tx, spent) = input_tx(&vtx, new, idx, prev, false)?;
    let h = SighashCache::new(&tx)
        .taproot_key_spend_signature_hash(0, &Prevouts::All(&[spent]), TapSighashType::Default)
        .map_err(|e| VmError::Other(e.to_string()))?;
    Ok(h.to_byte_array())
}

/// Bitcoin Core's consensus script check of input 0 spending `spent`.
fn run_script(tx: &Transaction, spent: &TxOut) -> Result<(), VmError> {
    use bitcoinconsensus as bc;
    let amount = i64::try_from(spent.value.to_sat())
        .map_err(|_| VmError::InvalidTransferWitness("amount exceeds i64".into()))?;
    let script = spent.script_pubkey.as_bytes();
    let utxo = bc::Utxo {
        script_pubkey: script.as_ptr(),
        script_pubkey_len: script.len() as u32,
        value: amount,
    };
    let flags = bc::VERIFY_P2SH
        | bc::VERIFY_DERSIG
        | bc::VERIFY_NULLDUMMY
        | bc::VERIFY_CHECKLOCKTIMEVERIFY
        | bc::VERIFY_CHECKSEQUENCEVERIFY
        | bc::VERIFY_WITNESS
        | bc::VERIFY_TAPROOT;
    bc::verify_with_flags(
        script,
        spent.value.to_sat(),
        &serialize(tx),
        Some(&[utxo]),
        0,
        flags,
    )
    .map_err(|e| VmError::InvalidTransferWitness(format!("script check failed ({e:?})")))
}

const LOCK_TIME_THRESHOLD: u64 = 500_000_000;
const SEQUENCE_DISABLED: u64 = 1 << 31;
const SEQUENCE_IS_SECONDS: u64 = 1 << 22;
const SEQUENCE_MASK: u64 = 0xffff;
const SEQUENCE_GRANULARITY: u32 = 9;

fn check_lock_time(new: &Asset, input: &PrevId, l: &TimeLocks<'_>) -> Result<(), VmError> {
    let unfinal = |m: String| Err(VmError::UnfinalizedAsset(m));
    let skip = |what: String| l.unchecked.borrow_mut().push(what);
    if new.lock_time != 0 {
        if new.lock_time > LOCK_TIME_THRESHOLD {
            match l.chain.mean_block_timestamp(l.block_height) {
                Some(t) if t < new.lock_time as i64 => {
                    return unfinal(format!("block_time={t}, min_time={}", new.lock_time));
                }
                Some(_) => {}
                None => skip(format!(
                    "lock time {} needs the median time of block {}",
                    new.lock_time, l.block_height
                )),
            }
        } else if (l.block_height as u64) < new.lock_time {
            return unfinal(format!(
                "block_height={}, lock_time={}",
                l.block_height, new.lock_time
            ));
        }
    }
    let seq = new.relative_lock_time;
    if seq != 0 && seq & SEQUENCE_DISABLED == 0 {
        let Some(confirmed) = l.chain.tx_block_height(&input.out_point.txid) else {
            skip(format!(
                "relative lock {seq:#x} needs the height of {}",
                input.out_point.txid
            ));
            return Ok(());
        };
        let rel = seq & SEQUENCE_MASK;
        if seq & SEQUENCE_IS_SECONDS != 0 {
            let base = l.chain.mean_block_timestamp(confirmed.saturating_sub(1));
            let now = l.chain.mean_block_timestamp(l.block_height);
            let (Some(base), Some(t)) = (base, now) else {
                skip(format!("relative lock {seq:#x} needs median times"));
                return Ok(());
            };
            let min_time = base + ((rel << SEQUENCE_GRANULARITY) as i64) - 1;
            if t < min_time {
                return unfinal(format!("block_time={t}, min_time={min_time}"));
            }
        } else {
            let min_height = (confirmed as u64).saturating_add(rel);
            if (l.block_height as u64) < min_height {
                return unfinal(format!(
                    "block_height={}, min_height={min_height}",
                    l.block_height
                ));
            }
        }
    }
    Ok(())
}
