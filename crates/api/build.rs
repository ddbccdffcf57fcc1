fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc: nothing to install on the build machine.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Every proto once, clients and servers: the server serves universerpc
    // and tapvault.v1, the agent's relay serves universerpc, and the tests'
    // stand-in tapd serves taprpc and assetwalletrpc.
    tonic_build::configure()
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
                "../../proto/taprpc/taprootassets_agent.proto",
                "../../proto/assetwalletrpc/assetwallet.proto",
            ],
            &["../../proto"],
        )?;
    println!("cargo:rerun-if-changed=../../proto");
    Ok(())
}
