//! Compiles the v1 contract (`yrd/exchange/v1/*.proto`) into Rust at build time.
//!
//! `protox` parses the `.proto` files in pure Rust, so a fresh machine needs only cargo, no
//! system `protoc`. The same `FileDescriptorSet` feeds two consumers:
//! `tonic-prost-build` generates the messages, servers and clients from it, and its encoded form
//! is written to `$OUT_DIR/yrd_descriptor.bin` for gRPC server reflection. Source info (the
//! comments) is kept in that set, so reflection clients show the documentation and the crate's
//! tests can check that every element is documented.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

use prost::Message as _;

/// Folder of the v1 contract, relative to the crate root (which is also the include root).
const V1_DIR: &str = "yrd/exchange/v1";
/// File in `$OUT_DIR` holding the encoded descriptor set, read by `src/lib.rs`.
const DESCRIPTOR_FILE: &str = "yrd_descriptor.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed={V1_DIR}");
    println!("cargo:rerun-if-changed=build.rs");

    let protos = proto_files(&crate_dir.join(V1_DIR))?;
    if protos.is_empty() {
        return Err(format!(
            "no .proto files found under {}",
            crate_dir.join(V1_DIR).display()
        )
        .into());
    }
    // Paths relative to the include root, so that descriptor file names read
    // `yrd/exchange/v1/common.proto`, the same as the `import` statements.
    let relative: Vec<PathBuf> = protos
        .iter()
        .map(|path| path.strip_prefix(&crate_dir).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([&crate_dir])?;
    // Imports (the well-known types) stay in the set: reflection clients need every dependency.
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(&relative)?;
    let descriptor_set = compiler.file_descriptor_set();

    fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        descriptor_set.encode_to_vec(),
    )?;

    // Code generation sees the whole set (it needs the well-known types to decide which
    // derives a message can have), but `google.protobuf.*` maps to `prost_types` (the default
    // extern path), so only `yrd.exchange.v1` gets code.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptor_set)?;
    Ok(())
}

/// Every `.proto` file directly under `dir`, sorted so that the build is reproducible.
fn proto_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
