//! Compiles `proto/` with protox (pure Rust), so a fresh machine needs no system `protoc`.
//! Also writes the file descriptor set that gRPC server reflection serves.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let proto = "proto/verbatim/v1/verbatim.proto";
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("verbatim_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
