//! Compiles the bench-local echo contract (`proto/echo.proto`) with `protox`, as the `proto`
//! crate does, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.open_files(["echo.proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
