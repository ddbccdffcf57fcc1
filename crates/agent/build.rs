fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    // Server stubs too: the tests' stand-in tapd serves the same protos.
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "../../proto/taprpc/taprpc.proto",
                "../../proto/taprpc/taprootassets_agent.proto",
                "../../proto/assetwalletrpc/assetwallet.proto",
            ],
            &["../../proto"],
        )?;
    println!("cargo:rerun-if-changed=../../proto");
    Ok(())
}
