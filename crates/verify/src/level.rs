//! How much offline verification to do: one vocabulary for `serve --verify`
//! (and its config file) and `proof verify`'s flags.

use crate::Options;

/// How much offline verification a proof gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyLevel {
    /// Every offline check (default).
    Full,
    /// Every offline check, plus every witness through the Taproot Assets
    /// VM: genesis proofs always, transfers when their inputs come along
    /// (proof files, wallet backups); a lone transfer's witness stays pending.
    FullVm,
    /// Every offline check but the header proof-of-work / merkle check.
    NoHeader,
    /// Decode only (for importing proofs that are known good).
    DecodeOnly,
}

impl VerifyLevel {
    /// The verifier's options, or `None` when nothing is verified.
    pub fn options(self) -> Option<Options> {
        match self {
            VerifyLevel::Full => Some(Options {
                header: true,
                vm: false,
            }),
            VerifyLevel::FullVm => Some(Options {
                header: true,
                vm: true,
            }),
            VerifyLevel::NoHeader => Some(Options {
                header: false,
                vm: false,
            }),
            VerifyLevel::DecodeOnly => None,
        }
    }
}

impl std::str::FromStr for VerifyLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(VerifyLevel::Full),
            "full-vm" => Ok(VerifyLevel::FullVm),
            "no-header" => Ok(VerifyLevel::NoHeader),
            "decode-only" => Ok(VerifyLevel::DecodeOnly),
            o => Err(format!(
                "unknown verify level {o:?} (full, full-vm, no-header, decode-only)"
            )),
        }
    }
}
