//! The protobuf codec of every generated client and server. It is prost's,
//! but a request that does not parse as its message is the caller's fault:
//! `INVALID_ARGUMENT` naming the message and what is wrong, where prost's
//! own codec answers `INTERNAL` (which tells a caller to report a bug, and
//! a server operator that something broke).

use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstDecoder, ProstEncoder};

#[derive(Debug, Clone)]
pub struct StrictCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        StrictCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(ProstDecoder::new(BufferSettings::default()))
    }
}

#[derive(Debug, Clone)]
pub struct StrictDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| {
            Status::invalid_argument(format!(
                "the message is not a valid {}: {}",
                message_name::<U>(),
                s.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// `tapvault_api::proto::universerpc::AssetRootRequest` → `universerpc.AssetRootRequest`.
fn message_name<U>() -> String {
    let full = std::any::type_name::<U>();
    let parts: Vec<&str> = full.split("::").collect();
    match parts.iter().position(|p| *p == "proto") {
        Some(i) if i + 1 < parts.len() => parts[i + 1..]
            .join(".")
            .replace("tapvault_v1", "tapvault.v1"),
        _ => parts.last().copied().unwrap_or(full).to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_names_are_the_protos() {
        assert_eq!(
            super::message_name::<crate::proto::universerpc::InfoRequest>(),
            "universerpc.InfoRequest"
        );
    }
}
