//! `AssetLeaves`' request in both tapd versions. tapd v0.7 sends a bare
//! `ID` (`asset_id = 1 bytes | asset_id_str = 2 | group_key = 3 bytes |
//! group_key_str = 4 | proof_type = 5`); v0.8 sends `AssetLeavesRequest`
//! (`ID id = 1; int32 offset = 2; int32 limit = 3; SortDirection direction = 4`).
//! Same method path, overlapping field numbers; they differ in wire types
//! (v0.7's fields 2-4 are length-delimited, v0.8's are varints; v0.7 has a
//! varint field 5) and in field 1 (v0.7: a 32-byte asset id; v0.8: an
//! embedded `ID`, which is never exactly 32 bytes long: an asset id inside
//! it takes 34, a group key 35 or 36, the string forms more). This type
//! decodes either, says which it got, and encodes back what it decoded.

use crate::proto::universerpc::{self as pb, id::Id as IdKind};
use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

#[derive(Clone, PartialEq, Default, Debug)]
pub struct AssetLeavesRequest {
    /// Field 1 as received (v0.8: an encoded `ID`; v0.7: the asset id).
    field1: Option<Vec<u8>>,
    pub offset: i32,
    pub limit: i32,
    pub direction: i32,
    /// v0.7's other `ID` fields, when present.
    legacy_asset_id_str: Option<String>,
    legacy_group_key: Option<Vec<u8>>,
    legacy_group_key_str: Option<String>,
    legacy_proof_type: Option<i32>,
}

impl AssetLeavesRequest {
    /// A v0.8 request.
    pub fn new(id: pb::Id, offset: i32, limit: i32, direction: i32) -> Self {
        AssetLeavesRequest {
            field1: Some(id.encode_to_vec()),
            offset,
            limit,
            direction,
            ..Default::default()
        }
    }

    /// The request a tapd v0.7 client sends: the bare `ID`.
    pub fn v07(id: pb::Id) -> Self {
        let mut r = AssetLeavesRequest::default();
        match id.id {
            Some(IdKind::AssetId(a)) => r.field1 = Some(a),
            Some(IdKind::AssetIdStr(s)) => r.legacy_asset_id_str = Some(s),
            Some(IdKind::GroupKey(g)) => r.legacy_group_key = Some(g),
            Some(IdKind::GroupKeyStr(s)) => r.legacy_group_key_str = Some(s),
            None => {}
        }
        if id.proof_type != 0 {
            r.legacy_proof_type = Some(id.proof_type);
        }
        r
    }

    /// Whether this is tapd v0.7's form (no paging: every leaf at once).
    pub fn is_v07(&self) -> bool {
        self.legacy_asset_id_str.is_some()
            || self.legacy_group_key.is_some()
            || self.legacy_group_key_str.is_some()
            || self.legacy_proof_type.is_some()
            || self.field1.as_ref().is_some_and(|f| f.len() == 32)
    }

    /// The universe the request names.
    pub fn id(&self) -> Result<Option<pb::Id>, DecodeError> {
        if self.is_v07() {
            let id = if let Some(a) = &self.field1 {
                Some(IdKind::AssetId(a.clone()))
            } else if let Some(s) = &self.legacy_asset_id_str {
                Some(IdKind::AssetIdStr(s.clone()))
            } else if let Some(g) = &self.legacy_group_key {
                Some(IdKind::GroupKey(g.clone()))
            } else {
                self.legacy_group_key_str.clone().map(IdKind::GroupKeyStr)
            };
            return Ok(Some(pb::Id {
                id,
                proof_type: self.legacy_proof_type.unwrap_or(0),
            }));
        }
        self.field1
            .as_ref()
            .map(|b| pb::Id::decode(b.as_slice()))
            .transpose()
    }
}

impl Message for AssetLeavesRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if let Some(f) = &self.field1 {
            encoding::bytes::encode(1, f, buf);
        }
        if let Some(s) = &self.legacy_asset_id_str {
            encoding::string::encode(2, s, buf);
        } else if self.offset != 0 {
            encoding::int32::encode(2, &self.offset, buf);
        }
        if let Some(g) = &self.legacy_group_key {
            encoding::bytes::encode(3, g, buf);
        } else if self.limit != 0 {
            encoding::int32::encode(3, &self.limit, buf);
        }
        if let Some(s) = &self.legacy_group_key_str {
            encoding::string::encode(4, s, buf);
        } else if self.direction != 0 {
            encoding::int32::encode(4, &self.direction, buf);
        }
        if let Some(t) = &self.legacy_proof_type {
            encoding::int32::encode(5, t, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        use WireType::{LengthDelimited as Len, Varint};
        match (tag, wire_type) {
            (1, Len) => {
                let mut v = Vec::new();
                encoding::bytes::merge(wire_type, &mut v, buf, ctx)?;
                self.field1 = Some(v);
            }
            (2, Varint) => encoding::int32::merge(wire_type, &mut self.offset, buf, ctx)?,
            (3, Varint) => encoding::int32::merge(wire_type, &mut self.limit, buf, ctx)?,
            (4, Varint) => encoding::int32::merge(wire_type, &mut self.direction, buf, ctx)?,
            (2, Len) => {
                let mut s = String::new();
                encoding::string::merge(wire_type, &mut s, buf, ctx)?;
                self.legacy_asset_id_str = Some(s);
            }
            (3, Len) => {
                let mut v = Vec::new();
                encoding::bytes::merge(wire_type, &mut v, buf, ctx)?;
                self.legacy_group_key = Some(v);
            }
            (4, Len) => {
                let mut s = String::new();
                encoding::string::merge(wire_type, &mut s, buf, ctx)?;
                self.legacy_group_key_str = Some(s);
            }
            (5, Varint) => {
                let mut t = 0i32;
                encoding::int32::merge(wire_type, &mut t, buf, ctx)?;
                self.legacy_proof_type = Some(t);
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx)?,
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        let mut n = 0;
        if let Some(f) = &self.field1 {
            n += encoding::bytes::encoded_len(1, f);
        }
        n += match &self.legacy_asset_id_str {
            Some(s) => encoding::string::encoded_len(2, s),
            None if self.offset != 0 => encoding::int32::encoded_len(2, &self.offset),
            None => 0,
        };
        n += match &self.legacy_group_key {
            Some(g) => encoding::bytes::encoded_len(3, g),
            None if self.limit != 0 => encoding::int32::encoded_len(3, &self.limit),
            None => 0,
        };
        n += match &self.legacy_group_key_str {
            Some(s) => encoding::string::encoded_len(4, s),
            None if self.direction != 0 => encoding::int32::encoded_len(4, &self.direction),
            None => 0,
        };
        if let Some(t) = &self.legacy_proof_type {
            n += encoding::int32::encoded_len(5, t);
        }
        n
    }

    fn clear(&mut self) {
        *self = AssetLeavesRequest::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<pb::Id> {
        vec![
            pb::Id {
                id: Some(IdKind::AssetId(vec![7; 32])),
                proof_type: 1,
            },
            pb::Id {
                id: Some(IdKind::AssetId(vec![7; 32])),
                proof_type: 0,
            },
            pb::Id {
                id: Some(IdKind::AssetIdStr("07".repeat(32))),
                proof_type: 2,
            },
            pb::Id {
                id: Some(IdKind::GroupKey(vec![2; 33])),
                proof_type: 0,
            },
            pb::Id {
                id: Some(IdKind::GroupKey(vec![2; 32])),
                proof_type: 2,
            },
            pb::Id {
                id: Some(IdKind::GroupKeyStr("02".repeat(33))),
                proof_type: 1,
            },
        ]
    }

    #[test]
    fn both_versions_decode_to_the_same_universe() {
        for id in ids() {
            // What a v0.7 client puts on the wire: the bare ID.
            let v07 = id.encode_to_vec();
            let r = AssetLeavesRequest::decode(v07.as_slice()).unwrap();
            assert!(r.is_v07(), "{id:?}");
            assert_eq!(r.id().unwrap(), Some(id.clone()));
            assert_eq!(r.encode_to_vec(), v07, "re-encodes as received");
            // v0.8, with and without paging fields.
            for (o, l, d) in [(0, 0, 0), (5, 100, 1), (0, 16384, 0)] {
                let v08 = AssetLeavesRequest::new(id.clone(), o, l, d).encode_to_vec();
                let r = AssetLeavesRequest::decode(v08.as_slice()).unwrap();
                assert!(!r.is_v07(), "{id:?}");
                assert_eq!(r.id().unwrap(), Some(id.clone()));
                assert_eq!((r.offset, r.limit, r.direction), (o, l, d));
                assert_eq!(r.encode_to_vec(), v08);
            }
        }
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for b in [
            &[0x0a, 0x05, 1][..],
            &[0x2a, 0xff],
            &[0x0a, 0x02, 0xff, 0xff],
        ] {
            if let Ok(r) = AssetLeavesRequest::decode(b) {
                let _ = r.id();
            }
        }
    }
}
