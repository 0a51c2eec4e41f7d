//! Writes the API reference of the v1 contract, `docs/api/reference.md`, from the compiled
//! descriptors and their comments:
//!
//! ```sh
//! cargo run -q -p yrd-proto --example api_reference -- docs/api/reference.md
//! ```
//!
//! Every service, method, message, field, oneof, enum and enum value of `yrd.exchange.v1` is
//! listed with its comment, file by file in the order the `.proto` files declare them, with a
//! link from each message or enum type to its entry. The output depends on nothing but the
//! `.proto` files, so CI regenerates it and fails when the checked-in copy differs
//! (README §"Contract checks").

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf, process::ExitCode};

use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto,
    field_descriptor_proto::{Label, Type},
    source_code_info::Location,
};
use yrd_proto::PACKAGE;
use yrd_proto::descriptor::{
    ENUM_VALUE, FILE_ENUM_TYPE, FILE_MESSAGE_TYPE, FILE_SERVICE, FILE_SYNTAX, MESSAGE_ENUM_TYPE,
    MESSAGE_FIELD, MESSAGE_NESTED_TYPE, MESSAGE_ONEOF_DECL, SERVICE_METHOD, index, v1_files,
};

/// The command that regenerates the reference, printed at its top.
const COMMAND: &str = "cargo run -q -p yrd-proto --example api_reference -- docs/api/reference.md";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: api_reference OUTPUT.md   (e.g. docs/api/reference.md)");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    let files = match v1_files() {
        Ok(files) => files,
        Err(error) => {
            eprintln!("api_reference: the embedded descriptor set does not decode: {error}");
            return ExitCode::FAILURE;
        }
    };
    if files.is_empty() {
        eprintln!("api_reference: no file of package {PACKAGE} in the descriptor set");
        return ExitCode::FAILURE;
    }
    let markdown = render(&files);
    if let Err(error) = std::fs::write(&out, markdown) {
        eprintln!("api_reference: cannot write {}: {error}", out.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The comments of one file, by source path.
struct Comments<'a> {
    by_path: BTreeMap<&'a [i32], &'a Location>,
}

impl<'a> Comments<'a> {
    fn of(file: &'a FileDescriptorProto) -> Self {
        let by_path = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .map(|location| (location.path.as_slice(), location))
            .collect();
        Self { by_path }
    }

    /// The element's leading comment, then its trailing one, with the one space after `//`
    /// removed from each line.
    fn text(&self, path: &[i32]) -> String {
        let Some(location) = self.by_path.get(path) else {
            return String::new();
        };
        let parts: Vec<String> = [&location.leading_comments, &location.trailing_comments]
            .into_iter()
            .flatten()
            .map(|comment| unindent(comment))
            .filter(|comment| !comment.is_empty())
            .collect();
        parts.join("\n\n")
    }

    /// The first line of the element's declaration, for ordering elements as the file does.
    fn line(&self, path: &[i32]) -> i32 {
        self.by_path
            .get(path)
            .and_then(|location| location.span.first().copied())
            .unwrap_or(i32::MAX)
    }
}

/// A comment's lines without the single space that follows `//`, trimmed at both ends.
fn unindent(comment: &str) -> String {
    let lines: Vec<&str> = comment
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect();
    lines.join("\n").trim().to_owned()
}

/// Escapes `<` and `>` outside code spans and fenced blocks, so that `<agency id>` stays text
/// instead of becoming an HTML tag.
fn escape_prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            out.push_str(line);
            continue;
        }
        if in_fence {
            out.push_str(line);
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            match c {
                '`' => {
                    in_code = !in_code;
                    out.push(c);
                }
                '<' if !in_code => out.push_str("&lt;"),
                '>' if !in_code => out.push_str("&gt;"),
                _ => out.push(c),
            }
        }
    }
    out
}

/// A comment as one table cell: hard-wrapped lines joined, paragraphs and list items kept
/// apart with `<br>`, and `|` escaped.
fn cell(text: &str) -> String {
    let text = escape_prose(text);
    let mut out = String::new();
    let mut blank = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            blank = true;
            continue;
        }
        if !out.is_empty() {
            let item = line.starts_with("* ") || line.starts_with("- ");
            out.push_str(if blank {
                "<br><br>"
            } else if item {
                "<br>"
            } else {
                " "
            });
        }
        blank = false;
        out.push_str(&line.replace('|', "\\|"));
    }
    if out.is_empty() {
        out.push('—');
    }
    out
}

/// The anchor of a package element, its full name without the leading dot.
fn anchor(full_name: &str) -> &str {
    full_name.trim_start_matches('.')
}

/// A type name as the reference shows it: a link for a type of the package, the full name
/// in code for another (the well-known types).
fn type_link(type_name: &str) -> String {
    let full = anchor(type_name);
    match full
        .strip_prefix(PACKAGE)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        Some(short) => format!("[`{short}`](#{full})"),
        None => format!("`{full}`"),
    }
}

fn scalar_name(kind: Type) -> &'static str {
    match kind {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        Type::Group | Type::Message | Type::Enum => "",
    }
}

/// The field's type without its label.
fn bare_type(field: &FieldDescriptorProto) -> String {
    match field.r#type() {
        Type::Message | Type::Enum | Type::Group => type_link(field.type_name()),
        scalar => format!("`{}`", scalar_name(scalar)),
    }
}

/// The map entry a `map<K, V>` field stands for, if the field is one.
fn map_entry<'a>(
    message: &'a DescriptorProto,
    field: &FieldDescriptorProto,
) -> Option<&'a DescriptorProto> {
    if field.label() != Label::Repeated || field.r#type() != Type::Message {
        return None;
    }
    let entry_name = field.type_name().rsplit('.').next()?;
    message.nested_type.iter().find(|nested| {
        nested.name() == entry_name
            && nested
                .options
                .as_ref()
                .is_some_and(|options| options.map_entry())
    })
}

/// The Type column of a field: label, type, and the oneof it belongs to.
fn field_type(message: &DescriptorProto, field: &FieldDescriptorProto) -> String {
    if let Some(entry) = map_entry(message, field) {
        let key = entry.field.iter().find(|f| f.number() == 1);
        let value = entry.field.iter().find(|f| f.number() == 2);
        if let (Some(key), Some(value)) = (key, value) {
            return format!("map&lt;{}, {}&gt;", bare_type(key), bare_type(value));
        }
    }
    let mut out = String::new();
    if field.label() == Label::Repeated {
        out.push_str("repeated ");
    } else if field.proto3_optional() {
        out.push_str("optional ");
    }
    out.push_str(&bare_type(field));
    let oneof = field
        .oneof_index
        .filter(|_| !field.proto3_optional())
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| message.oneof_decl.get(i));
    if let Some(oneof) = oneof {
        let _ = write!(out, " (oneof `{}`)", oneof.name());
    }
    if field
        .options
        .as_ref()
        .is_some_and(|options| options.deprecated())
    {
        out.push_str(" (deprecated)");
    }
    out
}

fn path(base: &[i32], steps: &[i32]) -> Vec<i32> {
    let mut path = base.to_vec();
    path.extend_from_slice(steps);
    path
}

/// One top-level element of a file, for the contents and the file's sections.
enum Element<'a> {
    Service(usize, &'a ServiceDescriptorProto),
    Message(usize, &'a DescriptorProto),
    Enum(usize, &'a EnumDescriptorProto),
}

/// A file's services, messages and enums in the order the file declares them.
fn elements<'a>(file: &'a FileDescriptorProto, comments: &Comments<'_>) -> Vec<Element<'a>> {
    let mut elements: Vec<(i32, Element<'a>)> = Vec::new();
    for (i, service) in file.service.iter().enumerate() {
        let line = comments.line(&[FILE_SERVICE, index(i)]);
        elements.push((line, Element::Service(i, service)));
    }
    for (i, message) in file.message_type.iter().enumerate() {
        let line = comments.line(&[FILE_MESSAGE_TYPE, index(i)]);
        elements.push((line, Element::Message(i, message)));
    }
    for (i, enumeration) in file.enum_type.iter().enumerate() {
        let line = comments.line(&[FILE_ENUM_TYPE, index(i)]);
        elements.push((line, Element::Enum(i, enumeration)));
    }
    elements.sort_by_key(|(line, _)| *line);
    elements.into_iter().map(|(_, element)| element).collect()
}

fn render(files: &[FileDescriptorProto]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# API reference: `{PACKAGE}`\n");
    let _ = writeln!(
        out,
        "The v1 gRPC contract of the exchange, generated from `proto/yrd/exchange/v1/*.proto` \
         and their comments. Do not edit it by hand: change the `.proto` files and run\n\n\
         ```sh\n{COMMAND}\n```\n\n\
         CI fails when this file is not what that command writes. The conventions every file \
         follows (resource names, field behaviour, dates, idempotency, receipts) are at the top \
         of [`common.proto`](#file-yrd-exchange-v1-common-proto).\n"
    );
    out.push_str("## Contents\n\n");
    for file in files {
        let comments = Comments::of(file);
        let _ = writeln!(out, "* [`{}`](#{})", file.name(), file_anchor(file.name()));
        for element in elements(file, &comments) {
            let (kind, name) = match element {
                Element::Service(_, service) => ("service", service.name()),
                Element::Message(_, message) => ("message", message.name()),
                Element::Enum(_, enumeration) => ("enum", enumeration.name()),
            };
            let _ = writeln!(out, "  * {kind} [`{name}`](#{PACKAGE}.{name})");
        }
    }
    out.push('\n');
    for file in files {
        render_file(&mut out, file);
    }
    out
}

/// The anchor of a file's section: its name with every non-alphanumeric character a dash.
fn file_anchor(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("file-{slug}")
}

fn render_file(out: &mut String, file: &FileDescriptorProto) {
    let comments = Comments::of(file);
    let _ = writeln!(
        out,
        "<a id=\"{}\"></a>\n\n## File `{}`\n",
        file_anchor(file.name()),
        file.name()
    );
    let overview = comments.text(&[FILE_SYNTAX]);
    if !overview.is_empty() {
        let _ = writeln!(out, "{}\n", escape_prose(&overview));
    }
    for element in elements(file, &comments) {
        match element {
            Element::Service(i, service) => {
                render_service(out, &comments, &[FILE_SERVICE, index(i)], service);
            }
            Element::Message(i, message) => {
                let full = format!("{PACKAGE}.{}", message.name());
                render_message(
                    out,
                    &comments,
                    &[FILE_MESSAGE_TYPE, index(i)],
                    &full,
                    message,
                );
            }
            Element::Enum(i, enumeration) => {
                let full = format!("{PACKAGE}.{}", enumeration.name());
                render_enum(
                    out,
                    &comments,
                    &[FILE_ENUM_TYPE, index(i)],
                    &full,
                    enumeration,
                );
            }
        }
    }
}

fn render_service(
    out: &mut String,
    comments: &Comments<'_>,
    at: &[i32],
    service: &ServiceDescriptorProto,
) {
    let full = format!("{PACKAGE}.{}", service.name());
    let _ = writeln!(
        out,
        "<a id=\"{full}\"></a>\n\n### Service `{}`\n",
        service.name()
    );
    let _ = writeln!(out, "{}\n", escape_prose(&comments.text(at)));
    for (j, method) in service.method.iter().enumerate() {
        let stream = |yes: bool| if yes { "stream " } else { "" };
        let _ = writeln!(
            out,
            "<a id=\"{full}.{name}\"></a>\n\n#### `{service}.{name}`\n\n\
             `rpc {name}({client_stream}{input}) returns ({server_stream}{output})`\n\n\
             Request {input_link}, response {output_link}{streaming}.\n",
            name = method.name(),
            service = service.name(),
            client_stream = stream(method.client_streaming()),
            server_stream = stream(method.server_streaming()),
            input = anchor(method.input_type())
                .rsplit('.')
                .next()
                .unwrap_or_default(),
            output = anchor(method.output_type())
                .rsplit('.')
                .next()
                .unwrap_or_default(),
            input_link = type_link(method.input_type()),
            output_link = type_link(method.output_type()),
            streaming = match (method.client_streaming(), method.server_streaming()) {
                (false, false) => "",
                (false, true) => " (a stream of responses)",
                (true, false) => " (a stream of requests)",
                (true, true) => " (streams both ways)",
            },
        );
        let text = comments.text(&path(at, &[SERVICE_METHOD, index(j)]));
        let _ = writeln!(out, "{}\n", escape_prose(&text));
    }
}

fn render_message(
    out: &mut String,
    comments: &Comments<'_>,
    at: &[i32],
    full: &str,
    message: &DescriptorProto,
) {
    let short = full.strip_prefix(&format!("{PACKAGE}.")).unwrap_or(full);
    let _ = writeln!(out, "<a id=\"{full}\"></a>\n\n### Message `{short}`\n");
    let text = comments.text(at);
    if !text.is_empty() {
        let _ = writeln!(out, "{}\n", escape_prose(&text));
    }
    if message.field.is_empty() {
        out.push_str("No fields.\n\n");
    } else {
        out.push_str("| Field | Number | Type | Description |\n|---|---|---|---|\n");
        for (j, field) in message.field.iter().enumerate() {
            let text = comments.text(&path(at, &[MESSAGE_FIELD, index(j)]));
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                field.name(),
                field.number(),
                field_type(message, field),
                cell(&text)
            );
        }
        out.push('\n');
    }
    // proto3 `optional` fields live in synthetic oneofs named `_<field>`; the field stands
    // for them.
    let oneofs: Vec<_> = message
        .oneof_decl
        .iter()
        .enumerate()
        .filter(|(_, oneof)| !oneof.name().starts_with('_'))
        .collect();
    for (k, oneof) in oneofs {
        let members: Vec<String> = message
            .field
            .iter()
            .filter(|field| field.oneof_index == Some(index(k)) && !field.proto3_optional())
            .map(|field| format!("`{}`", field.name()))
            .collect();
        let text = comments.text(&path(at, &[MESSAGE_ONEOF_DECL, index(k)]));
        let _ = writeln!(
            out,
            "Oneof `{}` (at most one of {}): {}\n",
            oneof.name(),
            members.join(", "),
            cell(&text)
        );
    }
    for (k, nested) in message.nested_type.iter().enumerate() {
        let is_map_entry = nested
            .options
            .as_ref()
            .is_some_and(|options| options.map_entry());
        if !is_map_entry {
            let nested_full = format!("{full}.{}", nested.name());
            let nested_at = path(at, &[MESSAGE_NESTED_TYPE, index(k)]);
            render_message(out, comments, &nested_at, &nested_full, nested);
        }
    }
    for (k, enumeration) in message.enum_type.iter().enumerate() {
        let nested_full = format!("{full}.{}", enumeration.name());
        let nested_at = path(at, &[MESSAGE_ENUM_TYPE, index(k)]);
        render_enum(out, comments, &nested_at, &nested_full, enumeration);
    }
}

fn render_enum(
    out: &mut String,
    comments: &Comments<'_>,
    at: &[i32],
    full: &str,
    enumeration: &EnumDescriptorProto,
) {
    let short = full.strip_prefix(&format!("{PACKAGE}.")).unwrap_or(full);
    let _ = writeln!(out, "<a id=\"{full}\"></a>\n\n### Enum `{short}`\n");
    let text = comments.text(at);
    if !text.is_empty() {
        let _ = writeln!(out, "{}\n", escape_prose(&text));
    }
    out.push_str("| Value | Number | Description |\n|---|---|---|\n");
    for (j, value) in enumeration.value.iter().enumerate() {
        let text = comments.text(&path(at, &[ENUM_VALUE, index(j)]));
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            value.name(),
            value.number(),
            cell(&text)
        );
    }
    out.push('\n');
}
