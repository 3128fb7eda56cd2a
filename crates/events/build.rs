//! Compiles `proto/` with protox (pure Rust), so no `protoc` binary is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../proto";
    let files = ["mno/events/v1/record.proto", "mno/events/v1/hub.proto"];
    let descriptors = protox::compile(files, [proto_root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={proto_root}");
    Ok(())
}
