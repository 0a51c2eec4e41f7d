//! Reading the contract's own descriptors: the field numbers of `descriptor.proto` that make
//! up a `SourceCodeInfo.Location.path`, and the decoded files of the v1 package.
//!
//! Used by this crate's convention tests and by the `api_reference` example, so both walk the
//! descriptors with the same numbers.

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// The encoded `google.protobuf.FileDescriptorSet` of the v1 contract and every file it
/// imports, source info (comments) included; hand it to `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/yrd_descriptor.bin"));

/// The protobuf package of the v1 contract.
pub const PACKAGE: &str = "yrd.exchange.v1";

/// `FileDescriptorProto.message_type`.
pub const FILE_MESSAGE_TYPE: i32 = 4;
/// `FileDescriptorProto.enum_type`.
pub const FILE_ENUM_TYPE: i32 = 5;
/// `FileDescriptorProto.service`.
pub const FILE_SERVICE: i32 = 6;
/// `FileDescriptorProto.syntax`; its location carries the file's overview comment.
pub const FILE_SYNTAX: i32 = 12;
/// `DescriptorProto.field`.
pub const MESSAGE_FIELD: i32 = 2;
/// `DescriptorProto.nested_type`.
pub const MESSAGE_NESTED_TYPE: i32 = 3;
/// `DescriptorProto.enum_type`.
pub const MESSAGE_ENUM_TYPE: i32 = 4;
/// `DescriptorProto.oneof_decl`.
pub const MESSAGE_ONEOF_DECL: i32 = 8;
/// `EnumDescriptorProto.value`.
pub const ENUM_VALUE: i32 = 2;
/// `ServiceDescriptorProto.method`.
pub const SERVICE_METHOD: i32 = 2;

/// The embedded [`FILE_DESCRIPTOR_SET`], decoded.
pub fn descriptor_set() -> Result<FileDescriptorSet, prost::DecodeError> {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
}

/// The files of the v1 package ([`PACKAGE`]), sorted by name; imports (well-known types) left
/// out.
pub fn v1_files() -> Result<Vec<FileDescriptorProto>, prost::DecodeError> {
    let mut files: Vec<FileDescriptorProto> = descriptor_set()?
        .file
        .into_iter()
        .filter(|file| file.package() == PACKAGE)
        .collect();
    files.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(files)
}

/// A list index as a step of a source path. Descriptor lists are far shorter than `i32::MAX`;
/// a longer one saturates (and then matches no location) rather than wrapping.
pub fn index(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}
