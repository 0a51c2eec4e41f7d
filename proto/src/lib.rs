//! The v1 gRPC contract of the yrd-exchange and its generated Rust.
//!
//! The `.proto` files under `yrd/exchange/v1/` are the contract between the exchange and the
//! partner systems of the Delta's market-regulation agencies; this crate holds nothing else and
//! depends on no crate of ours (the wire helpers the services share live in `yrd-call`), so
//! that every other crate (services, gateway, end-to-end tests) depends on one generated copy
//! and the contract can be read and reviewed on its own. The build script compiles the files
//! with `protox` (no system `protoc`) and `tonic-prost-build`.
//!
//! # Layout
//!
//! * [`v1`]: messages, enums, and a server and a client module per service, one service per
//!   `.proto` file plus `common.proto`: `TokenService`, `AdminService`, `AuditService`,
//!   `FeedService`, `SpotCheckService`, `DisposalService`, `CaseService`, `LicensingService`.
//! * [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of the contract and its imports, with
//!   their comments, for gRPC server reflection.
//! * [`SERVICE_NAMES`]: the full names of the eight services, for health and reflection checks.
//! * [`descriptor`]: the descriptor field numbers of a source path and the decoded v1 files,
//!   for the contract's checks and the API reference.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Generated code of the `yrd.exchange.v1` package: messages, enums, and for each service a
/// `<service>_server` module (trait and tower service) and a `<service>_client` module.
///
/// The documentation of every item is the comment of the `.proto` element it comes from.
// Generated code: a oneof holding whole resources (e.g. `FeedEvent.resource`) makes enum
// variants of very different sizes; boxing them would change the generated API for no gain.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    tonic::include_proto!("yrd.exchange.v1");
}

pub mod descriptor;

pub use descriptor::{FILE_DESCRIPTOR_SET, PACKAGE};

/// Full names of all seven v1 services (e.g. `"yrd.exchange.v1.SpotCheckService"`), as gRPC
/// reflection and health checking name them. Taken from the generated servers, so a renamed
/// service cannot drift from this list.
pub const SERVICE_NAMES: &[&str] = &[
    v1::token_service_server::SERVICE_NAME,
    v1::admin_service_server::SERVICE_NAME,
    v1::audit_service_server::SERVICE_NAME,
    v1::feed_service_server::SERVICE_NAME,
    v1::spot_check_service_server::SERVICE_NAME,
    v1::disposal_service_server::SERVICE_NAME,
    v1::case_service_server::SERVICE_NAME,
    v1::licensing_service_server::SERVICE_NAME,
];

#[cfg(test)]
mod tests {
    //! Checks of the contract itself, read from the compiled descriptors: every element is
    //! documented, and the AIP / buf-lint conventions the contract follows hold. A `.proto` change that
    //! breaks a convention fails here, naming each offending element.

    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use prost_types::{
        DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet,
        field_descriptor_proto::Label,
    };

    use super::descriptor::{
        ENUM_VALUE, FILE_ENUM_TYPE, FILE_MESSAGE_TYPE, FILE_SERVICE, MESSAGE_ENUM_TYPE,
        MESSAGE_FIELD, MESSAGE_NESTED_TYPE, MESSAGE_ONEOF_DECL, SERVICE_METHOD, index,
    };
    use super::{PACKAGE, SERVICE_NAMES};

    /// Writes that need no `request_id` because they are idempotent by value (documented on
    /// the request message).
    const NATURALLY_IDEMPOTENT_WRITES: &[&str] = &["FeedService.Ack"];

    fn descriptor_set() -> FileDescriptorSet {
        super::descriptor::descriptor_set().expect("the descriptor set decodes")
    }

    fn v1_files() -> Vec<FileDescriptorProto> {
        let files = super::descriptor::v1_files().expect("the descriptor set decodes");
        assert!(!files.is_empty(), "no file of package {PACKAGE} in the set");
        files
    }

    /// Every message of the package by full name (`.yrd.exchange.v1.Receipt`), nested included.
    fn messages_by_name(files: &[FileDescriptorProto]) -> HashMap<String, DescriptorProto> {
        fn add(
            prefix: &str,
            message: &DescriptorProto,
            out: &mut HashMap<String, DescriptorProto>,
        ) {
            let name = format!("{prefix}.{}", message.name());
            for nested in &message.nested_type {
                add(&name, nested, out);
            }
            out.insert(name, message.clone());
        }
        let mut out = HashMap::new();
        for file in files {
            for message in &file.message_type {
                add(&format!(".{}", file.package()), message, &mut out);
            }
        }
        out
    }

    /// Every element that must carry a comment: its source path and a readable name.
    fn documented_elements(file: &FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
        fn enum_elements(
            path: Vec<i32>,
            name: String,
            enumeration: &EnumDescriptorProto,
            out: &mut Vec<(Vec<i32>, String)>,
        ) {
            for (i, value) in enumeration.value.iter().enumerate() {
                let mut value_path = path.clone();
                value_path.extend([ENUM_VALUE, index(i)]);
                out.push((value_path, format!("enum value {name}.{}", value.name())));
            }
            out.push((path, format!("enum {name}")));
        }
        fn message_elements(
            path: Vec<i32>,
            name: String,
            message: &DescriptorProto,
            out: &mut Vec<(Vec<i32>, String)>,
        ) {
            for (i, field) in message.field.iter().enumerate() {
                let mut field_path = path.clone();
                field_path.extend([MESSAGE_FIELD, index(i)]);
                out.push((field_path, format!("field {name}.{}", field.name())));
            }
            for (i, oneof) in message.oneof_decl.iter().enumerate() {
                // proto3 `optional` fields live in synthetic oneofs named `_<field>`, which have
                // no source of their own; the field's comment covers them.
                if oneof.name().starts_with('_') {
                    continue;
                }
                let mut oneof_path = path.clone();
                oneof_path.extend([MESSAGE_ONEOF_DECL, index(i)]);
                out.push((oneof_path, format!("oneof {name}.{}", oneof.name())));
            }
            for (i, nested) in message.nested_type.iter().enumerate() {
                let mut nested_path = path.clone();
                nested_path.extend([MESSAGE_NESTED_TYPE, index(i)]);
                message_elements(
                    nested_path,
                    format!("{name}.{}", nested.name()),
                    nested,
                    out,
                );
            }
            for (i, nested) in message.enum_type.iter().enumerate() {
                let mut nested_path = path.clone();
                nested_path.extend([MESSAGE_ENUM_TYPE, index(i)]);
                enum_elements(
                    nested_path,
                    format!("{name}.{}", nested.name()),
                    nested,
                    out,
                );
            }
            out.push((path, format!("message {name}")));
        }

        let mut out = Vec::new();
        for (i, message) in file.message_type.iter().enumerate() {
            message_elements(
                vec![FILE_MESSAGE_TYPE, index(i)],
                message.name().to_owned(),
                message,
                &mut out,
            );
        }
        for (i, enumeration) in file.enum_type.iter().enumerate() {
            enum_elements(
                vec![FILE_ENUM_TYPE, index(i)],
                enumeration.name().to_owned(),
                enumeration,
                &mut out,
            );
        }
        for (i, service) in file.service.iter().enumerate() {
            for (j, method) in service.method.iter().enumerate() {
                out.push((
                    vec![FILE_SERVICE, index(i), SERVICE_METHOD, index(j)],
                    format!("method {}.{}", service.name(), method.name()),
                ));
            }
            out.push((
                vec![FILE_SERVICE, index(i)],
                format!("service {}", service.name()),
            ));
        }
        out
    }

    /// Leading comments of a file by source path.
    fn leading_comments(file: &FileDescriptorProto) -> HashMap<Vec<i32>, String> {
        file.source_code_info
            .as_ref()
            .map(|info| {
                info.location
                    .iter()
                    .filter_map(|location| {
                        let comment = location.leading_comments.as_deref()?.trim();
                        (!comment.is_empty()).then(|| (location.path.clone(), comment.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `ReferralStepKind` → `REFERRAL_STEP_KIND`.
    fn screaming_snake(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    fn field_names(message: &DescriptorProto) -> BTreeSet<&str> {
        message.field.iter().map(|field| field.name()).collect()
    }

    /// Each method as `Service.Method` with its input and output message.
    fn methods(files: &[FileDescriptorProto]) -> Vec<(String, DescriptorProto, DescriptorProto)> {
        let messages = messages_by_name(files);
        let mut out = Vec::new();
        for file in files {
            for service in &file.service {
                for method in &service.method {
                    let input = messages
                        .get(method.input_type())
                        .unwrap_or_else(|| panic!("{} is not in the package", method.input_type()));
                    let output = messages.get(method.output_type()).unwrap_or_else(|| {
                        panic!("{} is not in the package", method.output_type())
                    });
                    out.push((
                        format!("{}.{}", service.name(), method.name()),
                        input.clone(),
                        output.clone(),
                    ));
                }
            }
        }
        out
    }

    // Each convention is a function from files to the list of its violations, so that the
    // checks run on the real contract and, to prove they can fail, on a deliberately bad file.

    fn undocumented(files: &[FileDescriptorProto]) -> Vec<String> {
        let mut missing = Vec::new();
        for file in files {
            let comments = leading_comments(file);
            for (path, element) in documented_elements(file) {
                if !comments.contains_key(&path) {
                    missing.push(format!("{}: {element}", file.name()));
                }
            }
        }
        missing
    }

    fn enum_style_violations(files: &[FileDescriptorProto]) -> Vec<String> {
        let mut problems = Vec::new();
        for enumeration in files.iter().flat_map(|file| &file.enum_type) {
            let prefix = format!("{}_", screaming_snake(enumeration.name()));
            let unspecified = format!("{prefix}UNSPECIFIED");
            match enumeration.value.first() {
                Some(first) if first.number() == 0 && first.name() == unspecified => {}
                _ => problems.push(format!(
                    "{}: first value is not {unspecified} = 0",
                    enumeration.name()
                )),
            }
            for value in &enumeration.value {
                if !value.name().starts_with(&prefix) {
                    problems.push(format!(
                        "{}.{} lacks the prefix {prefix}",
                        enumeration.name(),
                        value.name()
                    ));
                }
            }
        }
        problems
    }

    fn method_message_violations(files: &[FileDescriptorProto]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut uses: BTreeMap<String, usize> = BTreeMap::new();
        for method in files
            .iter()
            .flat_map(|file| &file.service)
            .flat_map(|service| &service.method)
        {
            let request = format!(".{PACKAGE}.{}Request", method.name());
            let response = format!(".{PACKAGE}.{}Response", method.name());
            if method.input_type() != request {
                problems.push(format!(
                    "{}: takes {}, not {request}",
                    method.name(),
                    method.input_type()
                ));
            }
            if method.output_type() != response {
                problems.push(format!(
                    "{}: returns {}, not {response}",
                    method.name(),
                    method.output_type()
                ));
            }
            *uses.entry(method.input_type().to_owned()).or_default() += 1;
            *uses.entry(method.output_type().to_owned()).or_default() += 1;
        }
        problems.extend(
            uses.into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(message, n)| format!("{message} used by {n} methods")),
        );
        problems
    }

    fn write_violations(files: &[FileDescriptorProto]) -> Vec<String> {
        let mut problems = Vec::new();
        for (method, input, output) in methods(files) {
            let idempotency_key = input.field.iter().find(|f| f.name() == "request_id");
            let receipt = output.field.iter().find(|f| f.name() == "receipt");
            if let Some(receipt) = receipt {
                if receipt.type_name() != format!(".{PACKAGE}.Receipt") {
                    problems.push(format!("{method}: `receipt` is a {}", receipt.type_name()));
                }
            }
            match (idempotency_key.is_some(), receipt.is_some()) {
                (true, false) => problems.push(format!("{method}: has request_id but no receipt")),
                (false, true) if !NATURALLY_IDEMPOTENT_WRITES.contains(&method.as_str()) => {
                    problems.push(format!(
                        "{method}: answers with a receipt but has no request_id"
                    ))
                }
                _ => {}
            }
        }
        problems
    }

    fn pagination_violations(files: &[FileDescriptorProto]) -> Vec<String> {
        let mut problems = Vec::new();
        for (method, input, output) in methods(files) {
            let short = method.rsplit('.').next().unwrap_or_default();
            if !(short.starts_with("List") || short.starts_with("Search")) {
                continue;
            }
            let request = field_names(&input);
            for needed in ["page_size", "page_token"] {
                if !request.contains(needed) {
                    problems.push(format!("{method}: request lacks {needed}"));
                }
            }
            if !field_names(&output).contains("next_page_token") {
                problems.push(format!("{method}: response lacks next_page_token"));
            }
        }
        problems
    }

    fn behaviour_comment_violations(files: &[FileDescriptorProto]) -> Vec<String> {
        let mut problems = Vec::new();
        for file in files {
            let comments = leading_comments(file);
            for (i, message) in file.message_type.iter().enumerate() {
                let expected: &[&str] = if message.name().ends_with("Request") {
                    &["Required", "Optional"]
                } else if message.name().ends_with("Response") {
                    &["Output only"]
                } else {
                    continue;
                };
                for (j, field) in message.field.iter().enumerate() {
                    // Members of a real oneof are described by the oneof's own comment.
                    if field.oneof_index.is_some() && !field.proto3_optional() {
                        continue;
                    }
                    let path = vec![FILE_MESSAGE_TYPE, index(i), MESSAGE_FIELD, index(j)];
                    let comment = comments.get(&path).map(String::as_str).unwrap_or_default();
                    if !expected.iter().any(|word| comment.starts_with(word)) {
                        problems.push(format!(
                            "{}.{}: comment should start with one of {expected:?}",
                            message.name(),
                            field.name()
                        ));
                    }
                }
            }
        }
        problems
    }

    /// A file that breaks every convention once, so each check must report it.
    fn bad_file() -> FileDescriptorProto {
        use prost_types::{
            EnumValueDescriptorProto, FieldDescriptorProto, MethodDescriptorProto,
            ServiceDescriptorProto, SourceCodeInfo, field_descriptor_proto::Type,
            source_code_info::Location,
        };
        let string_field = |name: &str, number: i32| FieldDescriptorProto {
            name: Some(name.to_owned()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(Type::String as i32),
            ..Default::default()
        };
        let message = |name: &str, fields: Vec<FieldDescriptorProto>| DescriptorProto {
            name: Some(name.to_owned()),
            field: fields,
            ..Default::default()
        };
        let method = |name: &str, input: &str, output: &str| MethodDescriptorProto {
            name: Some(name.to_owned()),
            input_type: Some(format!(".{PACKAGE}.{input}")),
            output_type: Some(format!(".{PACKAGE}.{output}")),
            ..Default::default()
        };
        let comment = |path: Vec<i32>, text: &str| Location {
            path,
            leading_comments: Some(text.to_owned()),
            ..Default::default()
        };
        let mut receipt_field = string_field("receipt", 1);
        receipt_field.r#type = Some(Type::Message as i32);
        receipt_field.type_name = Some(format!(".{PACKAGE}.Receipt"));
        FileDescriptorProto {
            name: Some("bad.proto".to_owned()),
            package: Some(PACKAGE.to_owned()),
            message_type: vec![
                // A write without request_id; its field comment lacks the behaviour word.
                message("MakeThingRequest", vec![string_field("colour", 1)]),
                message("MakeThingResponse", vec![receipt_field]),
                // A list without pagination.
                message("ListThingsRequest", vec![]),
                message("ListThingsResponse", vec![]),
                message("Receipt", vec![]),
            ],
            enum_type: vec![EnumDescriptorProto {
                name: Some("Colour".to_owned()),
                value: vec![EnumValueDescriptorProto {
                    name: Some("RED".to_owned()),
                    number: Some(0),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("ThingService".to_owned()),
                method: vec![
                    method("MakeThing", "MakeThingRequest", "MakeThingResponse"),
                    method("ListThings", "ListThingsRequest", "ListThingsResponse"),
                    // Reuses another method's messages.
                    method("CopyThing", "MakeThingRequest", "MakeThingResponse"),
                ],
                ..Default::default()
            }],
            source_code_info: Some(SourceCodeInfo {
                location: vec![
                    comment(vec![FILE_MESSAGE_TYPE, 0], " The request."),
                    comment(vec![FILE_MESSAGE_TYPE, 0, MESSAGE_FIELD, 0], " The colour."),
                ],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_checks_report_a_file_that_breaks_the_conventions() {
        let bad = [bad_file()];
        let undocumented = undocumented(&bad);
        assert!(
            undocumented.contains(&"bad.proto: message MakeThingResponse".to_owned()),
            "{undocumented:?}"
        );
        assert!(
            undocumented.contains(&"bad.proto: field MakeThingResponse.receipt".to_owned()),
            "{undocumented:?}"
        );
        assert!(
            undocumented.contains(&"bad.proto: enum value Colour.RED".to_owned()),
            "{undocumented:?}"
        );
        assert!(
            undocumented.contains(&"bad.proto: method ThingService.MakeThing".to_owned()),
            "{undocumented:?}"
        );
        assert!(
            undocumented.contains(&"bad.proto: service ThingService".to_owned()),
            "{undocumented:?}"
        );
        assert!(
            !undocumented
                .iter()
                .any(|e| e.ends_with("MakeThingRequest.colour")),
            "{undocumented:?}"
        );

        let enums = enum_style_violations(&bad);
        assert_eq!(enums.len(), 2, "{enums:?}");
        let messages = method_message_violations(&bad);
        assert!(
            messages.iter().any(|p| p.starts_with("CopyThing: takes")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|p| p.contains("MakeThingRequest used by 2")),
            "{messages:?}"
        );
        let writes = write_violations(&bad);
        assert!(
            writes.contains(
                &"ThingService.MakeThing: answers with a receipt but has no request_id".to_owned()
            ),
            "{writes:?}"
        );
        let pages = pagination_violations(&bad);
        assert_eq!(pages.len(), 3, "{pages:?}");
        let behaviour = behaviour_comment_violations(&bad);
        assert!(
            behaviour
                .iter()
                .any(|p| p.starts_with("MakeThingRequest.colour")),
            "{behaviour:?}"
        );
        assert!(
            behaviour
                .iter()
                .any(|p| p.starts_with("MakeThingResponse.receipt")),
            "{behaviour:?}"
        );
    }

    #[test]
    fn service_names_are_exactly_the_services_of_the_contract() {
        let in_set: BTreeSet<String> = v1_files()
            .iter()
            .flat_map(|file| {
                file.service
                    .iter()
                    .map(|s| format!("{}.{}", file.package(), s.name()))
            })
            .collect();
        let listed: BTreeSet<String> = SERVICE_NAMES
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        assert_eq!(
            SERVICE_NAMES.len(),
            8,
            "eight services expected: {SERVICE_NAMES:?}"
        );
        assert_eq!(
            listed, in_set,
            "SERVICE_NAMES and the descriptor set disagree"
        );
    }

    #[test]
    fn well_known_imports_are_in_the_set_for_reflection() {
        let names: BTreeSet<String> = descriptor_set()
            .file
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        for needed in [
            "google/protobuf/timestamp.proto",
            "google/protobuf/duration.proto",
            "google/protobuf/field_mask.proto",
            "yrd/exchange/v1/common.proto",
        ] {
            assert!(
                names.contains(needed),
                "{needed} missing from the descriptor set: {names:?}"
            );
        }
    }

    #[test]
    fn every_message_field_enum_value_service_and_method_has_a_leading_comment() {
        let files = v1_files();
        for file in &files {
            assert!(
                file.source_code_info.is_some(),
                "{} has no source info",
                file.name()
            );
        }
        let checked: usize = files
            .iter()
            .map(|file| documented_elements(file).len())
            .sum();
        assert!(
            checked > 500,
            "only {checked} elements found; is the walk broken?"
        );
        let missing = undocumented(&files);
        assert!(
            missing.is_empty(),
            "undocumented elements:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn enums_start_unspecified_and_prefix_their_values() {
        let problems = enum_style_violations(&v1_files());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn every_method_has_its_own_request_and_response() {
        let problems = method_message_violations(&v1_files());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn writes_carry_a_request_id_and_answer_with_a_receipt() {
        let files = v1_files();
        let writes = methods(&files)
            .iter()
            .filter(|(_, _, output)| field_names(output).contains("receipt"))
            .count();
        assert!(writes >= 30, "only {writes} write methods found");
        let problems = write_violations(&files);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn lists_and_searches_are_paginated() {
        let files = v1_files();
        let lists = methods(&files)
            .iter()
            .filter(|(name, _, _)| name.contains(".List") || name.contains(".Search"))
            .count();
        assert!(lists >= 8, "only {lists} List/Search methods found");
        let problems = pagination_violations(&files);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn request_and_response_fields_state_their_behaviour() {
        let problems = behaviour_comment_violations(&v1_files());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
    #[test]
    fn no_field_is_proto2_required() {
        let required: Vec<String> = messages_by_name(&v1_files())
            .into_iter()
            .flat_map(|(name, message)| {
                message
                    .field
                    .iter()
                    .filter(|field| field.label() == Label::Required)
                    .map(move |field| format!("{name}.{}", field.name()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(required.is_empty(), "`required` fields: {required:?}");
    }

    #[test]
    fn generated_clients_exist_for_every_service() {
        use crate::v1::{
            admin_service_client::AdminServiceClient, audit_service_client::AuditServiceClient,
            case_service_client::CaseServiceClient, disposal_service_client::DisposalServiceClient,
            feed_service_client::FeedServiceClient,
            licensing_service_client::LicensingServiceClient,
            spot_check_service_client::SpotCheckServiceClient,
            token_service_client::TokenServiceClient,
        };
        use tonic::transport::Channel;

        let clients = [
            std::any::type_name::<TokenServiceClient<Channel>>(),
            std::any::type_name::<AdminServiceClient<Channel>>(),
            std::any::type_name::<AuditServiceClient<Channel>>(),
            std::any::type_name::<FeedServiceClient<Channel>>(),
            std::any::type_name::<SpotCheckServiceClient<Channel>>(),
            std::any::type_name::<DisposalServiceClient<Channel>>(),
            std::any::type_name::<CaseServiceClient<Channel>>(),
            std::any::type_name::<LicensingServiceClient<Channel>>(),
        ];
        for (client, service) in clients.iter().zip(SERVICE_NAMES) {
            let short = service.rsplit('.').next().unwrap_or_default();
            assert!(
                client.contains(&format!("{short}Client")),
                "{client} is not the client of {service}"
            );
        }
    }
}
