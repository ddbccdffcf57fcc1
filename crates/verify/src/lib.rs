//! Offline verification of Taproot Assets proofs: every check of tapd's
//! `Proof.Verify` that needs no chain backend (spec TAP-ENCODINGS §6, §8).
//!
//! Pure: no I/O. A [`Report`] lists each check with its outcome so a caller
//! can show all of them; [`Report::into_result`] turns it into the first
//! failure or a [`Verified`] summary that carries what the store indexes.

mod commit;
#[cfg(feature = "forge")]
pub mod forge;
pub mod taproot;
pub mod vm;

mod level;
pub use level::VerifyLevel;

use bitcoin::hashes::Hash as _;
use bitcoin::{BlockHash, OutPoint, Txid};
use std::fmt;
use tapvault_codec::derived::burn_key;
use tapvault_codec::universe::{universe_leaf_info, ProofType, UniverseLeafInfo};
use tapvault_codec::{Asset, File, Proof, PubKey, RawProof};

pub use commit::{asset_commitment_key, tap_commitment_key};

/// The checks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// Proof version and asset tag are acceptable.
    Version,
    /// Header proof-of-work against its own nBits, and the tx merkle proof.
    Header,
    /// The anchor tx spends the proof's PrevOut.
    PrevOut,
    /// The asset is committed (asset tree → TAP tree → tapscript leaf →
    /// taproot key) in the anchor output.
    AnchorOutput,
    /// Every other P2TR output provably does not commit to the asset.
    Exclusion,
    /// STXO inclusion/exclusion proofs of spent inputs (V1 transitions).
    Stxo,
    /// Genesis reveal, asset ID and meta hash.
    Genesis,
    /// Group key reveal.
    GroupKey,
    /// Split root proof and split commitment.
    Split,
    /// Asset witnesses through the Taproot Assets VM (optional).
    Witness,
    /// Proof file chain: outpoints, asset IDs, amounts.
    Chain,
}

impl Check {
    pub fn title(self) -> &'static str {
        match self {
            Check::Version => "proof version and asset tag",
            Check::Header => "block header proof-of-work and tx merkle proof",
            Check::PrevOut => "anchor tx spends prev_out",
            Check::AnchorOutput => "asset committed in anchor output",
            Check::Exclusion => "exclusion proofs for other P2TR outputs",
            Check::Stxo => "STXO proofs of spent inputs",
            Check::Genesis => "genesis reveal, asset ID and meta hash",
            Check::GroupKey => "group key reveal",
            Check::Split => "split root proof and split commitment",
            Check::Witness => "asset witnesses (Taproot Assets VM)",
            Check::Chain => "proof file chain",
        }
    }
}

/// Why a proof is not valid; each variant belongs to exactly one [`Check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown proof version {0}")]
    UnknownVersion(u32),
    #[error("invalid asset tag: {0}")]
    BadTag(String),
    #[error("block header {hash} does not meet its own target (nBits {bits:#010x})")]
    HeaderPow { hash: String, bits: u32 },
    #[error("tx merkle proof yields root {got}, header commits to {want}")]
    MerkleRoot { got: String, want: String },
    #[error("anchor tx does not spend prev_out {0}")]
    PrevOutNotSpent(String),
    #[error("anchor output {index}: {reason}")]
    AnchorOutput { index: u32, reason: String },
    #[error("exclusion proof for output {index}: {reason}")]
    Exclusion { index: u32, reason: String },
    #[error("STXO proof: {0}")]
    Stxo(String),
    #[error("genesis: {0}")]
    Genesis(String),
    #[error("group key: {0}")]
    GroupKey(String),
    #[error("split: {0}")]
    Split(String),
    #[error("witness: {0}")]
    Witness(String),
    #[error("proof {index} of the file: {reason}")]
    Chain { index: usize, reason: String },
}

impl VerifyError {
    pub fn check(&self) -> Check {
        match self {
            VerifyError::UnknownVersion(_) | VerifyError::BadTag(_) => Check::Version,
            VerifyError::HeaderPow { .. } | VerifyError::MerkleRoot { .. } => Check::Header,
            VerifyError::PrevOutNotSpent(_) => Check::PrevOut,
            VerifyError::AnchorOutput { .. } => Check::AnchorOutput,
            VerifyError::Exclusion { .. } => Check::Exclusion,
            VerifyError::Stxo(_) => Check::Stxo,
            VerifyError::Genesis(_) => Check::Genesis,
            VerifyError::GroupKey(_) => Check::GroupKey,
            VerifyError::Split(_) => Check::Split,
            VerifyError::Witness(_) => Check::Witness,
            VerifyError::Chain { .. } => Check::Chain,
        }
    }
}

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(VerifyError),
    /// Not applicable to this proof, or needs data we do not have offline.
    Skipped(String),
}

/// How much to verify.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Check header proof-of-work and the tx merkle proof (on by default;
    /// off only for proofs known to carry placeholder headers).
    pub header: bool,
    /// Run every witness through the Taproot Assets VM (off by default). A
    /// transfer's inputs are known only in a proof file (the previous
    /// proof and any additional inputs), so a lone transfer proof records
    /// the check as pending. Asset lock times are checked at the proof's
    /// block height (relative ones from the input proof's height); those
    /// in seconds need median times and stay pending.
    pub vm: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            header: true,
            vm: false,
        }
    }
}

/// What the store indexes about a verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub asset_id: [u8; 32],
    pub group_key: Option<PubKey>,
    pub script_key: PubKey,
    pub anchor: OutPoint,
    pub txid: Txid,
    pub prev_out: OutPoint,
    pub block_height: u32,
    pub block_hash: BlockHash,
    pub amount: u64,
    pub proof_type: ProofType,
    pub universe: UniverseLeafInfo,
    /// Checks that could not be done offline (recorded as pending).
    pub pending: Vec<(Check, String)>,
}

/// Every check of one proof, with its outcome.
#[derive(Debug, Clone)]
pub struct Report {
    pub results: Vec<(Check, Outcome)>,
    summary: Verified,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &VerifyError> {
        self.results.iter().filter_map(|(_, o)| match o {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
    }
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }
    pub fn failed_checks(&self) -> Vec<Check> {
        let mut v: Vec<Check> = self.failures().map(|e| e.check()).collect();
        v.dedup();
        v
    }
    pub fn into_result(self) -> Result<Verified, VerifyError> {
        if let Some(e) = self.failures().next() {
            return Err(e.clone());
        }
        Ok(self.summary)
    }
    pub fn summary(&self) -> &Verified {
        &self.summary
    }
    /// Replaces one check's outcome (and its pending entry).
    fn set(&mut self, check: Check, o: Outcome) {
        if let Some(slot) = self.results.iter_mut().find(|(c, _)| *c == check) {
            slot.1 = o.clone();
        }
        self.summary.pending.retain(|(c, _)| *c != check);
        if let Outcome::Skipped(why) = o {
            self.summary.pending.push((check, why));
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (c, o) in &self.results {
            match o {
                Outcome::Passed => writeln!(f, "✓ {}", c.title())?,
                Outcome::Failed(e) => writeln!(f, "✗ {}: {e}", c.title())?,
                Outcome::Skipped(why) => writeln!(f, "- {}: skipped ({why})", c.title())?,
            }
        }
        Ok(())
    }
}

fn outcome(r: Result<Option<String>, VerifyError>) -> Outcome {
    match r {
        Ok(None) => Outcome::Passed,
        Ok(Some(why)) => Outcome::Skipped(why),
        Err(e) => Outcome::Failed(e),
    }
}

/// Verifies one proof on its own (no previous proof needed).
pub fn verify_proof(p: &Proof, opts: Options) -> Report {
    let info = universe_leaf_info(p);
    let mut results = Vec::new();
    results.push((Check::Version, outcome(check_version(p))));
    results.push((
        Check::Header,
        if opts.header {
            outcome(check_header(p))
        } else {
            Outcome::Skipped("disabled by options".into())
        },
    ));
    results.push((Check::PrevOut, outcome(check_prev_out(p))));
    let inclusion_version = commit::check_inclusion(p);
    let inc_ver = inclusion_version.as_ref().ok().copied();
    results.push((
        Check::AnchorOutput,
        outcome(inclusion_version.map(|_| None)),
    ));
    results.push((
        Check::Exclusion,
        outcome(commit::check_exclusions(p, inc_ver)),
    ));
    results.push((Check::Stxo, outcome(commit::check_stxo(p))));
    results.push((Check::Genesis, outcome(check_genesis(p))));
    results.push((Check::GroupKey, outcome(check_group_key(p))));
    results.push((Check::Split, outcome(commit::check_split(p))));
    if opts.vm {
        results.push((Check::Witness, outcome(verify_witness(p, None))));
    }
    let pending = results
        .iter()
        .filter_map(|(c, o)| match o {
            Outcome::Skipped(w) => Some((*c, w.clone())),
            _ => None,
        })
        .collect();
    let txid = p.anchor_tx.txid();
    Report {
        results,
        summary: Verified {
            asset_id: p.asset.id(),
            group_key: p.asset.group_key,
            script_key: p.asset.script_key,
            anchor: info.anchor,
            txid,
            prev_out: p.prev_out,
            block_height: p.block_height,
            block_hash: p.block_header.block_hash(),
            amount: p.asset.amount,
            proof_type: info.proof_type,
            universe: info,
            pending,
        },
    }
}

fn check_version(p: &Proof) -> Result<Option<String>, VerifyError> {
    if p.version > 1 {
        return Err(VerifyError::UnknownVersion(p.version));
    }
    check_tag(&p.asset.genesis.tag)?;
    Ok(None)
}

fn check_tag(tag: &[u8]) -> Result<(), VerifyError> {
    let s = std::str::from_utf8(tag).map_err(|_| VerifyError::BadTag("not UTF-8".into()))?;
    if tag.is_empty() || tag.len() > 64 {
        return Err(VerifyError::BadTag(format!(
            "{} bytes (want 1..=64)",
            tag.len()
        )));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(VerifyError::BadTag("contains a control character".into()));
    }
    if s.trim().is_empty() {
        return Err(VerifyError::BadTag("only whitespace".into()));
    }
    Ok(())
}

fn check_header(p: &Proof) -> Result<Option<String>, VerifyError> {
    let h = p.block_header.parse().map_err(|e| VerifyError::HeaderPow {
        hash: e.to_string(),
        bits: 0,
    })?;
    let bits = h.bits.to_consensus();
    if h.validate_pow(h.target()).is_err() {
        return Err(VerifyError::HeaderPow {
            hash: h.block_hash().to_string(),
            bits,
        });
    }
    let txid = p.anchor_tx.txid().to_byte_array();
    let got = p.tx_merkle_proof.root(txid);
    let want = p.block_header.merkle_root();
    if got != want {
        let disp = |mut b: [u8; 32]| {
            b.reverse();
            hex::encode(b)
        };
        return Err(VerifyError::MerkleRoot {
            got: disp(got),
            want: disp(want),
        });
    }
    Ok(None)
}

fn check_prev_out(p: &Proof) -> Result<Option<String>, VerifyError> {
    if p.anchor_tx
        .tx
        .input
        .iter()
        .any(|i| i.previous_output == p.prev_out)
    {
        Ok(None)
    } else {
        Err(VerifyError::PrevOutNotSpent(p.prev_out.to_string()))
    }
}

fn check_genesis(p: &Proof) -> Result<Option<String>, VerifyError> {
    let g = |m: String| Err(VerifyError::Genesis(m));
    let is_genesis = p.asset.is_genesis();
    match (&p.genesis_reveal, is_genesis) {
        (None, true) => return g("genesis asset without a genesis reveal".into()),
        (Some(_), false) => return g("genesis reveal on a non-genesis asset".into()),
        (None, false) => {
            if p.meta_reveal.is_some() {
                return g("meta reveal on a non-genesis asset".into());
            }
            return Ok(Some("not a genesis proof".into()));
        }
        (Some(_), true) => {}
    }
    let Some(reveal) = &p.genesis_reveal else {
        return Ok(None);
    };
    if reveal.first_prev_out != p.prev_out {
        return g(format!(
            "reveal first_prev_out {} is not prev_out {}",
            reveal.first_prev_out, p.prev_out
        ));
    }
    let want_meta = match &p.meta_reveal {
        Some(m) => m.meta_hash(),
        None => [0; 32],
    };
    if reveal.meta_hash != want_meta {
        return g(match &p.meta_reveal {
            Some(_) => format!(
                "meta hash {} does not match the meta reveal ({})",
                hex::encode(reveal.meta_hash),
                hex::encode(want_meta)
            ),
            None => "non-zero meta hash without a meta reveal".into(),
        });
    }
    if reveal.output_index != p.inclusion_proof.output_index {
        return g(format!(
            "reveal output index {} is not the anchor output {}",
            reveal.output_index, p.inclusion_proof.output_index
        ));
    }
    if reveal.asset_id() != p.asset.id() {
        return g(format!(
            "revealed genesis has asset ID {}, the asset has {}",
            hex::encode(reveal.asset_id()),
            hex::encode(p.asset.id())
        ));
    }
    Ok(None)
}

fn check_group_key(p: &Proof) -> Result<Option<String>, VerifyError> {
    let gk = |m: String| Err(VerifyError::GroupKey(m));
    let Some(reveal) = &p.group_key_reveal else {
        return Ok(Some(
            match (p.asset.group_key.is_some(), p.asset.is_genesis()) {
                (true, true) => {
                    "grouped genesis without reveal (re-issuance): needs the group anchor".into()
                }
                (true, false) => "grouped transfer: group membership needs the group anchor".into(),
                _ => "asset has no group key".into(),
            },
        ));
    };
    if !p.asset.is_genesis() {
        return gk("group key reveal on a non-genesis asset".into());
    }
    let Some(group_key) = p.asset.group_key else {
        return gk("group key reveal on an asset without a group key".into());
    };
    match reveal {
        tapvault_codec::GroupKeyReveal::V0 {
            raw_key,
            tapscript_root,
        } => {
            let raw = raw_key
                .to_secp()
                .ok_or_else(|| VerifyError::GroupKey("raw key is not a valid point".into()))?;
            let internal = taproot::add_scalar(&raw, &p.asset.id())
                .ok_or_else(|| VerifyError::GroupKey("asset ID tweak failed".into()))?;
            let q = taproot::taproot_output_key(&internal, tapscript_root.as_ref())
                .ok_or_else(|| VerifyError::GroupKey("taproot tweak failed".into()))?;
            if q.serialize() != group_key.0 {
                return gk(format!(
                    "reveal derives {}, the asset has {}",
                    hex::encode(q.serialize()),
                    group_key
                ));
            }
            Ok(None)
        }
        tapvault_codec::GroupKeyReveal::V1 { .. } => {
            let q = group_key_v1(reveal, &p.asset.id())?;
            if q.serialize() != group_key.0 {
                return gk(format!(
                    "reveal derives {}, the asset has {}",
                    hex::encode(q.serialize()),
                    group_key
                ));
            }
            Ok(None)
        }
    }
}

/// The group key a V1 reveal derives for the genesis asset `asset_id`: the
/// revealed tapscript root must be the one recomputed from the asset ID (and
/// the custom subtree, if any), and the key is the internal key tweaked by it.
pub fn group_key_v1(
    reveal: &tapvault_codec::GroupKeyReveal,
    asset_id: &[u8; 32],
) -> Result<bitcoin::secp256k1::PublicKey, VerifyError> {
    let tapvault_codec::GroupKeyReveal::V1 {
        version,
        internal_key,
        tapscript_root,
        custom_subtree_root,
    } = reveal
    else {
        return Err(VerifyError::GroupKey("not a V1 reveal".into()));
    };
    // tapd reads an all-zero custom root as "none".
    let custom = custom_subtree_root.as_ref().filter(|r| **r != [0u8; 32]);
    let root = taproot::group_key_v1_root(*version, asset_id, custom).ok_or_else(|| {
        VerifyError::GroupKey(format!(
            "unknown non-spendable leaf version {version} (1 = OP_RETURN, 2 = Pedersen)"
        ))
    })?;
    if root != *tapscript_root {
        return Err(VerifyError::GroupKey(format!(
            "revealed tapscript root {} is not the one the asset ID commits to ({})",
            hex::encode(tapscript_root),
            hex::encode(root)
        )));
    }
    let internal = internal_key
        .to_secp()
        .ok_or_else(|| VerifyError::GroupKey("internal key is not a valid point".into()))?;
    taproot::taproot_output_key(&internal, Some(&root))
        .ok_or_else(|| VerifyError::GroupKey("taproot tweak failed".into()))
}

/// Runs the state transition that created `p`'s asset through the VM:
/// a genesis on its own, a transfer with `prev` (the proof of the input it
/// spends) and the proof's additional inputs.
pub fn verify_witness(p: &Proof, prev: Option<&Proof>) -> Result<Option<String>, VerifyError> {
    let w = |e: vm::VmError| VerifyError::Witness(e.to_string());
    let (new, splits) = match p.asset.prev_witnesses.first() {
        Some(wit) if p.asset.has_split_commitment_witness() => {
            let Some(sc) = &wit.split_commitment else {
                return Err(VerifyError::Witness(
                    "split witness without commitment".into(),
                ));
            };
            (
                (*sc.root_asset).clone(),
                vec![vm::SplitAsset {
                    asset: p.asset.clone(),
                    output_index: p.inclusion_proof.output_index,
                }],
            )
        }
        _ => (p.asset.clone(), Vec::new()),
    };
    if new.is_genesis() {
        return vm::execute(&new, &splits, &[], None)
            .map(|_| None)
            .map_err(w);
    }
    let Some(prev) = prev else {
        if let Some(cw) = &p.challenge_witness {
            return verify_ownership(p, cw);
        }
        return Ok(Some(
            "a transfer's inputs are in the proof file: verify the whole file".into(),
        ));
    };
    let input = |q: &Proof| {
        (
            tapvault_codec::PrevId {
                out_point: q.outpoint(),
                asset_id: q.asset.id(),
                script_key: q.asset.script_key,
            },
            q.asset.clone(),
        )
    };
    let mut inputs = vec![input(prev)];
    let mut heights = vec![(prev.outpoint().txid, prev.block_height)];
    for (j, f) in p.additional_inputs.iter().enumerate() {
        let last = f
            .last_proof()
            .map_err(|e| VerifyError::Witness(format!("additional input {j}: {e}")))?
            .ok_or_else(|| VerifyError::Witness(format!("additional input {j} is empty")))?;
        heights.push((last.outpoint().txid, last.block_height));
        inputs.push(input(&last));
    }
    // Lock times as tapd checks them, at the proof's block: heights come
    // from the input proofs; median times would need the chain.
    let chain = ProofHeights(heights);
    let locks = vm::TimeLocks::new(p.block_height, &chain);
    vm::execute(&new, &splits, &inputs, Some(&locks)).map_err(w)?;
    let unchecked = locks.unchecked.into_inner();
    Ok((!unchecked.is_empty()).then(|| unchecked.join("; ")))
}

/// An ownership proof's challenge witness: the owner spends the whole asset
/// to the NUMS key from the zero outpoint (so the witness can never move
/// the asset on chain), a 1-in-1-out transition the VM checks. A witness
/// over a verifier's challenge (NUMS + challenge·G) needs that challenge,
/// which a backup server does not have: such a proof stays pending.
fn verify_ownership(p: &Proof, witness: &[Vec<u8>]) -> Result<Option<String>, VerifyError> {
    let owned = p.asset.clone();
    let prev_id = tapvault_codec::PrevId {
        out_point: OutPoint {
            txid: Txid::all_zeros(),
            vout: 0,
        },
        asset_id: owned.id(),
        script_key: owned.script_key,
    };
    let mut spend = owned.clone();
    spend.split_commitment_root = None;
    spend.lock_time = 0;
    spend.relative_lock_time = 0;
    spend.script_key = PubKey(tapvault_codec::derived::NUMS_KEY);
    spend.prev_witnesses = vec![tapvault_codec::Witness {
        prev_id: Some(prev_id),
        tx_witness: witness.to_vec(),
        split_commitment: None,
    }];
    match vm::execute(&spend, &[], &[(prev_id, owned)], None) {
        Ok(()) => Ok(None),
        Err(vm::VmError::InvalidTransferWitness(_)) => Ok(Some(
            "ownership proof: the challenge witness does not sign the challenge-less \
             spend; it may sign a verifier's challenge"
                .into(),
        )),
        Err(e) => Err(VerifyError::Witness(format!("ownership proof: {e}"))),
    }
}

/// Confirmation heights known from a proof file's own proofs.
struct ProofHeights(Vec<(Txid, u32)>);

impl vm::ChainLookup for ProofHeights {
    fn tx_block_height(&self, txid: &Txid) -> Option<u32> {
        self.0.iter().find(|(t, _)| t == txid).map(|(_, h)| *h)
    }
    fn mean_block_timestamp(&self, _: u32) -> Option<i64> {
        None
    }
}

/// Verifies a whole proof file: every proof, then the chain between them.
pub fn verify_file(f: &File, opts: Options) -> Result<Vec<Verified>, VerifyError> {
    let proofs = f.decode_proofs().map_err(|e| VerifyError::Chain {
        index: 0,
        reason: e.to_string(),
    })?;
    verify_chain(&proofs, opts)
}

/// One proof of a file, checked in place.
pub struct FileStep {
    /// Its own checks; with [`Options::vm`], a transfer's witnesses are
    /// checked against the proof before it once `link` holds.
    pub report: Report,
    /// The first proof is a genesis; every other spends the one before it.
    pub link: Result<(), VerifyError>,
    /// Its additional input files, each verified whole.
    pub inputs: Result<(), VerifyError>,
}

/// Verifies decoded proofs genesis → tip, one step per proof, lazily (stop
/// at the first failure that matters).
pub fn verify_steps(proofs: &[RawProof], opts: Options) -> impl Iterator<Item = FileStep> + '_ {
    proofs.iter().enumerate().map(move |(i, rp)| {
        let mut report = verify_proof(&rp.proof, opts);
        let prev = i.checked_sub(1).map(|j| &proofs[j].proof);
        let link = match prev {
            None if !rp.proof.asset.is_genesis() => Err(VerifyError::Chain {
                index: 0,
                reason: "the first proof is not a genesis proof".into(),
            }),
            None => Ok(()),
            Some(prev) => check_link(i, prev, &rp.proof),
        };
        if let (Some(prev), true, Ok(())) = (prev, opts.vm, &link) {
            report.set(
                Check::Witness,
                outcome(verify_witness(&rp.proof, Some(prev))),
            );
        }
        let inputs = rp
            .proof
            .additional_inputs
            .iter()
            .enumerate()
            .try_for_each(|(j, add)| {
                verify_file(add, opts)
                    .map(|_| ())
                    .map_err(|e| VerifyError::Chain {
                        index: i,
                        reason: format!("additional input file {j}: {e}"),
                    })
            });
        FileStep {
            report,
            link,
            inputs,
        }
    })
}

/// Verifies decoded proofs genesis → tip and the links between them.
pub fn verify_chain(proofs: &[RawProof], opts: Options) -> Result<Vec<Verified>, VerifyError> {
    if proofs.is_empty() {
        return Err(VerifyError::Chain {
            index: 0,
            reason: "empty proof file".into(),
        });
    }
    let mut out = Vec::with_capacity(proofs.len());
    for step in verify_steps(proofs, opts) {
        let v = step.report.into_result()?;
        step.link?;
        step.inputs?;
        out.push(v);
    }
    Ok(out)
}

fn check_link(i: usize, prev: &Proof, cur: &Proof) -> Result<(), VerifyError> {
    let bad = |reason: String| Err(VerifyError::Chain { index: i, reason });
    if cur.prev_out != prev.outpoint() {
        return bad(format!(
            "prev_out {} is not the previous proof's anchor outpoint {}",
            cur.prev_out,
            prev.outpoint()
        ));
    }
    if cur.asset.id() != prev.asset.id()
        && (cur.asset.group_key.is_none() || cur.asset.group_key != prev.asset.group_key)
    {
        return bad("asset ID differs from the previous proof's".into());
    }
    let Some(pid) = cur.asset.primary_prev_id() else {
        return bad("asset has no previous input".into());
    };
    if pid.out_point != prev.outpoint() || pid.script_key.x_only() != prev.asset.script_key.x_only()
    {
        return bad(format!(
            "first input {}/{} is not the previous proof's output",
            pid.out_point, pid.script_key
        ));
    }
    let extra: u64 = cur
        .additional_inputs
        .iter()
        .filter_map(|f| f.last_proof().ok().flatten())
        .map(|p| p.asset.amount)
        .sum();
    if cur.asset.amount > prev.asset.amount.saturating_add(extra) {
        return bad(format!(
            "amount {} exceeds the inputs' {}",
            cur.asset.amount,
            prev.asset.amount.saturating_add(extra)
        ));
    }
    Ok(())
}

/// The burn key of each previous input of a transfer, as 33 bytes `02‖X`.
pub(crate) fn stxo_keys(a: &Asset) -> Result<Vec<PubKey>, VerifyError> {
    a.prev_witnesses
        .iter()
        .filter_map(|w| w.prev_id)
        .map(|pid| {
            let x = burn_key(&pid)
                .ok_or_else(|| VerifyError::Stxo("burn key derivation failed".into()))?;
            let mut k = [0u8; 33];
            k[0] = 2;
            k[1..].copy_from_slice(&x);
            Ok(PubKey(k))
        })
        .collect()
}
