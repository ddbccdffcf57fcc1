//! TAP addresses (spec §9): bech32m over a strict TLV stream.

use crate::error::{invalid, DecodeError, ErrorKind, Result, Within};
use crate::primitives::PubKey;
use crate::proof::TapscriptPreimage;
use crate::tlv::{exact, Policy, Stream, StreamWriter, UnknownOdd, MAX_P2P_RECORD};
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};

/// Which chain an address is for, by its human-readable part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressNetwork {
    /// `tapbc`
    Mainnet,
    /// `taptb`: testnet3, testnet4 and signet share it.
    Testnet,
    /// `taprt`
    Regtest,
    /// `tapsb`
    Simnet,
}

impl AddressNetwork {
    pub fn hrp(self) -> &'static str {
        match self {
            AddressNetwork::Mainnet => "tapbc",
            AddressNetwork::Testnet => "taptb",
            AddressNetwork::Regtest => "taprt",
            AddressNetwork::Simnet => "tapsb",
        }
    }
    pub fn from_hrp(h: &str) -> Option<Self> {
        Some(match h {
            "tapbc" => AddressNetwork::Mainnet,
            "taptb" => AddressNetwork::Testnet,
            "taprt" => AddressNetwork::Regtest,
            "tapsb" => AddressNetwork::Simnet,
            _ => return None,
        })
    }
}

/// A decoded TAP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub network: AddressNetwork,
    pub version: u8,
    pub asset_version: u8,
    /// Absent for V2 group-key-only addresses.
    pub asset_id: Option<[u8; 32]>,
    pub group_key: Option<PubKey>,
    pub script_key: PubKey,
    pub internal_key: PubKey,
    pub tapscript_sibling: Option<TapscriptPreimage>,
    pub amount: u64,
    pub proof_courier_addr: String,
    pub unknown: UnknownOdd,
}

impl Address {
    pub const MAX_VERSION: u8 = 2;

    /// Parses a bech32m address string.
    pub fn decode(s: &str) -> Result<Self> {
        let checked = CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| DecodeError::new(ErrorKind::Bech32(e.to_string())))?;
        let hrp = checked.hrp().to_lowercase();
        let network = AddressNetwork::from_hrp(&hrp).ok_or(ErrorKind::UnknownHrp(hrp))?;
        let payload: Vec<u8> = checked.byte_iter().collect();
        Self::decode_payload(network, &payload).within("address")
    }

    /// Parses the TLV payload of an address for `network`.
    pub fn decode_payload(network: AddressNetwork, b: &[u8]) -> Result<Self> {
        let mut s = Stream::parse(b, MAX_P2P_RECORD)?;
        let version = exact(s.require(0)?, |r| r.u8()).within("version(0)")?;
        if version > Self::MAX_VERSION {
            return invalid(format!("unknown address version {version}")).within("version(0)");
        }
        let asset_version = exact(s.require(2)?, |r| r.u8()).within("asset_version(2)")?;
        let asset_id = match s.take(4) {
            Some(v) => Some(exact(v, |r| r.array()).within("asset_id(4)")?),
            None => None,
        };
        let group_key = match s.take(5) {
            Some(v) => Some(exact(v, PubKey::read).within("group_key(5)")?),
            None => None,
        };
        if asset_id.is_none() && (version < 2 || group_key.is_none()) {
            return invalid("address has neither an asset ID nor (V2) a group key");
        }
        let script_key = exact(s.require(6)?, PubKey::read).within("script_key(6)")?;
        let internal_key = exact(s.require(8)?, PubKey::read).within("internal_key(8)")?;
        let tapscript_sibling = match s.take(9) {
            Some(v) => Some(TapscriptPreimage::decode(v).within("tapscript_sibling(9)")?),
            None => None,
        };
        let amount = exact(s.require(10)?, |r| r.bigsize()).within("amount(10)")?;
        let courier = s.require(12)?;
        let proof_courier_addr = String::from_utf8(courier.to_vec()).map_err(|_| {
            DecodeError::new(ErrorKind::Invalid(
                "proof courier address is not UTF-8".into(),
            ))
            .within("proof_courier_addr(12)")
        })?;
        Ok(Address {
            network,
            version,
            asset_version,
            asset_id,
            group_key,
            script_key,
            internal_key,
            tapscript_sibling,
            amount,
            proof_courier_addr,
            unknown: s.finish(Policy::Strict)?,
        })
    }

    pub fn encode_payload(&self) -> Vec<u8> {
        let mut w = StreamWriter::new();
        w.u8(0, self.version);
        w.u8(2, self.asset_version);
        if let Some(id) = &self.asset_id {
            w.record(4, id.to_vec());
        }
        if let Some(g) = &self.group_key {
            w.record(5, g.0.to_vec());
        }
        w.record(6, self.script_key.0.to_vec());
        w.record(8, self.internal_key.0.to_vec());
        if let Some(sib) = &self.tapscript_sibling {
            w.record(9, sib.encode());
        }
        w.bigsize(10, self.amount);
        w.record(12, self.proof_courier_addr.as_bytes().to_vec());
        w.finish(&self.unknown)
    }

    /// The bech32m string.
    pub fn encode(&self) -> Result<String> {
        let hrp = Hrp::parse(self.network.hrp())
            .map_err(|e| DecodeError::new(ErrorKind::Bech32(e.to_string())))?;
        bech32::encode::<Bech32m>(hrp, &self.encode_payload())
            .map_err(|e| DecodeError::new(ErrorKind::Bech32(e.to_string())))
    }
}
