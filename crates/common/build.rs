//! Generates the wire types and the config gRPC service from `proto/`.
//!
//! Needs `protoc` (Debian package `protobuf-compiler`, installed by `.ci/run`);
//! `PROTOC` may point at another one.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        proto_root.join("anpr/v1/pipeline.proto"),
        proto_root.join("anpr/v1/config.proto"),
    ];
    // Relative to this package, so that each checkout sharing one target
    // folder (CI clones, worktrees) watches its own proto files.
    println!("cargo:rerun-if-changed=../../proto");
    tonic_prost_build::configure()
        // These carry passwords: their Debug is written by hand in `proto.rs`
        // so that a password never reaches a log line.
        .skip_debug([
            ".anpr.v1.VmsTarget",
            ".anpr.v1.Camera",
            ".anpr.v1.StoredSecret",
        ])
        .compile_protos(&files, &[proto_root])
        .map_err(|err| {
            format!(
                "compiling proto/ failed ({err}); protoc must be installed \
                 (apt-get install protobuf-compiler) or named by PROTOC"
            )
        })?;
    Ok(())
}
