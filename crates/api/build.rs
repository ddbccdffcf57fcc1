fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc: nothing to install on the build machine.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Clients and servers of every proto: the server serves universerpc and
    // tapvault.v1, the agent's relay serves universerpc, and the tests'
    // stand-in tapd serves taprpc and assetwalletrpc. First what tapvault
    // serves, with the descriptor set gRPC reflection advertises...
    // Every service decodes with `codec.rs`: a request that is not its
    // message is INVALID_ARGUMENT, not prost's INTERNAL.
    tonic_prost_build::configure()
        .codec_path("crate::codec::StrictCodec")
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out.join("tapvault_descriptor.bin"))
        // Decodes both tapd v0.7's bare ID and v0.8's request (compat.rs).
        .extern_path(
            ".universerpc.AssetLeavesRequest",
            "crate::compat::AssetLeavesRequest",
        )
        .compile_protos(
            &[
                "../../proto/universerpc/universe.proto",
                "../../proto/tapvault/v1/backup.proto",
                "../../proto/tapvault/v1/admin.proto",
                "../../proto/tapvault/v1/log.proto",
            ],
            &["../../proto"],
        )?;
    // ...then tapd's own services the agent calls (not advertised). This
    // pass writes the whole taprpc package again, now with them.
    tonic_prost_build::configure()
        .codec_path("crate::codec::StrictCodec")
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "../../proto/taprpc/taprootassets_agent.proto",
                "../../proto/assetwalletrpc/assetwallet.proto",
            ],
            &["../../proto"],
        )?;
    println!("cargo:rerun-if-changed=../../proto");
    Ok(())
}
