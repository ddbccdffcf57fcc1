fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc: nothing to install on the build machine.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_build::configure()
        .build_client(true)
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
            ],
            &["../../proto"],
        )?;
    println!("cargo:rerun-if-changed=../../proto");
    Ok(())
}
