//! tapvault's wire contract, shared by the server, the agent and the CLI:
//! every proto compiled once (`proto`), the client with the server's
//! certificate pinned and a bearer token (`client`), certificate files and
//! fingerprints (`tls`), `AssetLeaves`' request in both tapd versions
//! (`compat`), the hardened gRPC accept loop both servers use (`listener`),
//! and the message size limit. Nothing here touches a database
//! or serves HTTP: the agent and the CLI's client commands need only this.

pub mod client;
pub mod codec;
pub mod compat;
pub mod listener;
pub mod receipts;
pub mod tls;

pub mod proto {
    pub mod taprpc {
        tonic::include_proto!("taprpc");
    }
    pub mod universerpc {
        tonic::include_proto!("universerpc");
    }
    pub mod tapvault_v1 {
        tonic::include_proto!("tapvault.v1");
    }
    pub mod assetwalletrpc {
        tonic::include_proto!("assetwalletrpc");
    }
    /// The services tapvault itself serves (for gRPC reflection); tapd's
    /// that the agent calls are not in it.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("tapvault_descriptor");
}

/// tapd's gRPC message limit (lnrpc.MaxGrpcMsgSize), on both ends.
pub const MAX_MESSAGE_BYTES: usize = 200 * 1024 * 1024;
