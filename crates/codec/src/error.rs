//! Decode errors that say where (record path) and why.

use std::fmt;

/// What went wrong, independent of where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("truncated: need {needed} bytes, {available} left")]
    Truncated { needed: u64, available: u64 },
    #[error("decoded varint is not canonical")]
    NonCanonicalVarInt,
    #[error("TLV types not strictly increasing: type {got} after {prev}")]
    TypesNotIncreasing { prev: u64, got: u64 },
    #[error("unknown even TLV type {0}")]
    UnknownEvenType(u64),
    #[error("TLV type {0} is not allowed here")]
    TypeNotAllowed(u64),
    #[error("length {len} over cap {cap}")]
    LengthOverCap { len: u64, cap: u64 },
    #[error("count {count} over cap {cap}")]
    CountOverCap { count: u64, cap: u64 },
    #[error("record length {got} but its value is {expected} bytes")]
    WrongLength { expected: u64, got: u64 },
    #[error("{0} trailing bytes")]
    TrailingBytes(u64),
    #[error("missing required record type {0}")]
    MissingRecord(u64),
    #[error("invalid public key")]
    BadKey,
    #[error("bad magic: expected {expected:?}, got {got}")]
    BadMagic { expected: &'static str, got: String },
    #[error("invalid proof file checksum at proof {index}: hash chain mismatch")]
    HashChainMismatch { index: usize },
    #[error("invalid bitcoin transaction: {0}")]
    BadTx(String),
    #[error("invalid MS-SMT proof: {0}")]
    BadMssmtProof(#[from] tapvault_mssmt::ProofError),
    #[error("invalid bech32m: {0}")]
    Bech32(String),
    #[error("unknown address HRP {0:?}")]
    UnknownHrp(String),
    #[error("invalid value: {0}")]
    Invalid(String),
}

/// A decode failure: the path of records leading to it, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Outermost first, e.g. `["proof", "inclusion_proof(12)", "internal_key(2)"]`.
    pub path: Vec<String>,
    pub kind: ErrorKind,
}

impl DecodeError {
    pub fn new(kind: ErrorKind) -> Self {
        DecodeError {
            path: Vec::new(),
            kind,
        }
    }
    /// Adds an outer path element.
    pub fn within(mut self, what: impl Into<String>) -> Self {
        self.path.insert(0, what.into());
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path.join("."), self.kind)
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<ErrorKind> for DecodeError {
    fn from(k: ErrorKind) -> Self {
        DecodeError::new(k)
    }
}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// Attach context to a result.
pub(crate) trait Within<T> {
    fn within(self, what: impl Into<String>) -> Result<T>;
}

impl<T> Within<T> for Result<T> {
    fn within(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.within(what))
    }
}

/// Shorthand for an `Invalid` error.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(ErrorKind::Invalid(msg.into()).into())
}
