//! Canister modules: the IC's rules on what a module may be (IC interface spec, "Canister
//! module format" and "Resource limits"), and its preparation for execution — every mutable
//! global and the memory exported so that state can be saved between messages, and the start
//! function turned into an export that runs once, at install, as on the IC.

use std::{collections::BTreeSet, io::Read};

use wasm_encoder::{ExportKind, ExportSection, Module as Encoder, RawSection};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

use crate::error::{ErrorCode, Reject};

/// Largest module the IC installs, gzipped or not.
pub const MAX_MODULE_BYTES: usize = 100 * 1024 * 1024;
pub const MEMORY_EXPORT: &str = "__replica_memory";
pub const START_EXPORT: &str = "__replica_start";
/// The first table, where callbacks of calls are found by index (IC interface spec,
/// "Inter-canister method calls": `reply_fun` and `reject_fun` index the table).
pub const TABLE_EXPORT: &str = "__replica_table";
const GLOBAL_EXPORT_PREFIX: &str = "__replica_global_";

/// What the replica needs to know about a valid module.
#[derive(Debug)]
pub struct ModuleInfo {
    /// The module as prepared for execution.
    pub prepared: Vec<u8>,
    pub memory64: bool,
    pub has_memory: bool,
    pub has_table: bool,
    pub has_start: bool,
    /// The mutable globals, in index order, as the replica exports them.
    pub globals: Vec<ExportedGlobal>,
    pub entry_points: BTreeSet<String>,
    pub metadata: Metadata,
    /// `ic0` functions the module imports.
    pub imports: Vec<String>,
    /// Whether messages may run one after another on one instance: no instruction changes
    /// a table or drops a segment, state that a fresh instance per message would reset.
    pub reusable: bool,
}

/// A mutable global: the name the replica exports it under, and its type.
#[derive(Debug)]
pub struct ExportedGlobal {
    pub name: String,
    pub ty: wasmparser::ValType,
}

fn invalid(message: impl std::fmt::Display) -> Reject {
    Reject::new(
        ErrorCode::CanisterInvalidWasm,
        format!("Wasm module is invalid: {message}"),
    )
}

/// Undoes gzip, if the module is gzipped, as the IC accepts both.
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, Reject> {
    if bytes.len() > MAX_MODULE_BYTES {
        return Err(invalid(format!(
            "it is {} bytes, over the limit of {MAX_MODULE_BYTES}",
            bytes.len()
        )));
    }
    if !bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_MODULE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(format!("it looks gzipped but does not decompress: {e}")))?;
    if out.len() > MAX_MODULE_BYTES {
        return Err(invalid(format!(
            "it decompresses to more than {MAX_MODULE_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// Checks a (decompressed) module against the IC's rules and prepares it.
pub fn prepare(wasm: &[u8]) -> Result<ModuleInfo, Reject> {
    if !wasm.starts_with(b"\0asm") {
        return Err(invalid(
            "it does not start with the wasm magic bytes `\\0asm`",
        ));
    }
    let mut info = ModuleInfo {
        prepared: Vec::new(),
        memory64: false,
        has_memory: false,
        has_table: false,
        has_start: false,
        globals: Vec::new(),
        entry_points: BTreeSet::new(),
        metadata: Vec::new(),
        imports: Vec::new(),
        reusable: true,
    };
    let mut encoder = Encoder::new();
    let mut exports = ExportSection::new();
    let mut exports_written = false;
    let mut export_names = BTreeSet::new();
    let mut imported_globals = 0u32;
    let mut types: Vec<(usize, usize)> = Vec::new();
    let mut function_types: Vec<u32> = Vec::new();
    let mut imported_functions = 0u32;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::TypeSection(reader) => {
                for group in reader.clone() {
                    for ty in group.map_err(invalid)?.into_types() {
                        let f = ty.unwrap_func();
                        types.push((f.params().len(), f.results().len()));
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import.map_err(invalid)?;
                    if import.module != "ic0" {
                        return Err(invalid(format!(
                            "it imports `{}.{}`; canisters may import only from `ic0`",
                            import.module, import.name
                        )));
                    }
                    match import.ty {
                        TypeRef::Func(_) => {
                            imported_functions += 1;
                            info.imports.push(import.name.to_owned());
                        }
                        TypeRef::Global(_) => imported_globals += 1,
                        _ => {
                            return Err(invalid(format!(
                                "it imports `ic0.{}`, which is not a function",
                                import.name
                            )));
                        }
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader.clone() {
                    function_types.push(ty.map_err(invalid)?);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader.clone() {
                    let memory = memory.map_err(invalid)?;
                    if info.has_memory {
                        return Err(invalid("it declares more than one memory"));
                    }
                    info.has_memory = true;
                    info.memory64 = memory.memory64;
                }
            }
            Payload::TableSection(reader) => info.has_table |= reader.count() > 0,
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.clone().into_iter().enumerate() {
                    let ty = global.map_err(invalid)?.ty;
                    if ty.mutable {
                        info.globals.push(ExportedGlobal {
                            name: format!(
                                "{GLOBAL_EXPORT_PREFIX}{}",
                                imported_globals as usize + i
                            ),
                            ty: ty.content_type,
                        });
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.map_err(invalid)?;
                    check_export(&export, &types, &function_types, imported_functions)?;
                    if export.name.starts_with("canister_") {
                        info.entry_points.insert(export.name.to_owned());
                    }
                    export_names.insert(export.name.to_owned());
                    exports.export(export.name, export_kind(export.kind), export.index);
                }
                continue;
            }
            Payload::StartSection { func, .. } => {
                info.has_start = true;
                exports.export(START_EXPORT, ExportKind::Func, *func);
                continue;
            }
            Payload::CustomSection(section) => info.metadata.extend(metadata_entry(section)),
            Payload::CodeSectionEntry(body) if info.reusable => {
                info.reusable = !changes_instance_state(body).map_err(invalid)?;
            }
            _ => {}
        }
        // Our exports go where the export section belongs: before start, element and code.
        if !exports_written && section_after_exports(&payload) {
            add_state_exports(&mut exports, &info, &export_names)?;
            encoder.section(&exports);
            exports_written = true;
        }
        if let Some((id, range)) = payload.as_section() {
            encoder.section(&RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    if !exports_written {
        add_state_exports(&mut exports, &info, &export_names)?;
        encoder.section(&exports);
    }
    check_entry_points(&info.entry_points)?;
    info.prepared = encoder.finish();
    Ok(info)
}

/// Whether a function body holds an instruction that changes a table or drops a segment.
fn changes_instance_state(body: &wasmparser::FunctionBody) -> wasmparser::Result<bool> {
    use wasmparser::Operator as Op;
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        if matches!(
            reader.read()?,
            Op::TableSet { .. }
                | Op::TableGrow { .. }
                | Op::TableFill { .. }
                | Op::TableCopy { .. }
                | Op::TableInit { .. }
                | Op::ElemDrop { .. }
                | Op::DataDrop { .. }
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `icp:public` / `icp:private` custom sections: (public, name, contents).
pub type Metadata = Vec<(bool, String, Vec<u8>)>;

/// A module's metadata sections.
pub fn metadata(wasm: &[u8]) -> Result<Metadata, Reject> {
    let wasm = decompress(wasm)?;
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(&wasm) {
        if let Payload::CustomSection(section) = payload.map_err(invalid)? {
            found.extend(metadata_entry(&section));
        }
    }
    Ok(found)
}

fn metadata_entry(section: &wasmparser::CustomSectionReader) -> Option<(bool, String, Vec<u8>)> {
    [("icp:public ", true), ("icp:private ", false)]
        .into_iter()
        .find_map(|(prefix, public)| {
            let name = section.name().strip_prefix(prefix)?;
            Some((public, name.to_owned(), section.data().to_vec()))
        })
}

fn section_after_exports(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::StartSection { .. }
            | Payload::ElementSection(_)
            | Payload::DataCountSection { .. }
            | Payload::CodeSectionStart { .. }
            | Payload::DataSection(_)
    )
}

fn add_state_exports(
    exports: &mut ExportSection,
    info: &ModuleInfo,
    existing: &BTreeSet<String>,
) -> Result<(), Reject> {
    for name in info
        .globals
        .iter()
        .map(|g| g.name.as_str())
        .chain([MEMORY_EXPORT, TABLE_EXPORT])
    {
        if existing.contains(name) {
            return Err(invalid(format!(
                "it exports `{name}`, a name the replica reserves"
            )));
        }
    }
    for ExportedGlobal { name, .. } in &info.globals {
        let index = name[GLOBAL_EXPORT_PREFIX.len()..]
            .parse()
            .expect("we wrote the index");
        exports.export(name, ExportKind::Global, index);
    }
    if info.has_memory {
        exports.export(MEMORY_EXPORT, ExportKind::Memory, 0);
    }
    if info.has_table {
        exports.export(TABLE_EXPORT, ExportKind::Table, 0);
    }
    Ok(())
}

fn export_kind(kind: ExternalKind) -> ExportKind {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

/// Entry points must be functions of type `() -> ()`.
fn check_export(
    export: &wasmparser::Export,
    types: &[(usize, usize)],
    function_types: &[u32],
    imported_functions: u32,
) -> Result<(), Reject> {
    if !export.name.starts_with("canister_") {
        return Ok(());
    }
    let shape = (export.kind == ExternalKind::Func)
        .then(|| export.index.checked_sub(imported_functions))
        .flatten()
        .and_then(|i| function_types.get(i as usize))
        .and_then(|t| types.get(*t as usize));
    if shape != Some(&(0, 0)) {
        return Err(invalid(format!(
            "its export `{}` is not a function of type () -> ()",
            export.name
        )));
    }
    Ok(())
}

const SYSTEM_ENTRY_POINTS: [&str; 7] = [
    "canister_init",
    "canister_pre_upgrade",
    "canister_post_upgrade",
    "canister_inspect_message",
    "canister_heartbeat",
    "canister_global_timer",
    "canister_on_low_wasm_memory",
];
const METHOD_KINDS: [&str; 3] = [
    "canister_update ",
    "canister_query ",
    "canister_composite_query ",
];

/// Only the spec's entry points may be named `canister_…`, and a method name has one kind.
fn check_entry_points(entry_points: &BTreeSet<String>) -> Result<(), Reject> {
    let mut methods = BTreeSet::new();
    for name in entry_points {
        if SYSTEM_ENTRY_POINTS.contains(&name.as_str()) {
            continue;
        }
        let Some(method) = METHOD_KINDS.iter().find_map(|k| name.strip_prefix(k)) else {
            return Err(invalid(format!(
                "it exports `{name}`, which is not a canister entry point; only {} and `canister_update|query|composite_query <name>` are",
                SYSTEM_ENTRY_POINTS.join(", ")
            )));
        };
        if !methods.insert(method) {
            return Err(invalid(format!(
                "it exports method `{method}` both as an update and as a query"
            )));
        }
    }
    Ok(())
}
