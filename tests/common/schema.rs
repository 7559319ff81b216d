//! Checks a JSON document sexton printed against its JSON Schema in
//! docs/schema/ (draft 2020-12), so that the schemas cannot drift from
//! what the code prints.
//!
//! Every file of docs/schema/ is registered under one base URI, so that a
//! schema may refer to another by its file name (`"$ref": "status.json"`),
//! as it would beside its siblings on disk. A schema name may carry a
//! fragment: `control.json#/$defs/request`.

use jsonschema::{Registry, Validator};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// Where the schemas are registered; nothing is ever fetched from there.
const BASE: &str = "file:///sexton/docs/schema/";

pub fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

/// The file names of every schema, sorted.
pub fn schema_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(schema_dir())
        .expect("docs/schema")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut builder = Registry::new();
        for name in schema_files() {
            let path = schema_dir().join(&name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            builder = builder
                .add(format!("{BASE}{name}"), doc)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        builder.prepare().expect("the schemas register")
    })
}

/// The compiled validator of `schema`, compiled once per test binary.
fn validator(schema: &str) -> Arc<Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cache
        .entry(schema.to_string())
        .or_insert_with(|| {
            let root = serde_json::json!({ "$ref": format!("{BASE}{schema}") });
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .with_registry(registry())
                .build(&root)
                .unwrap_or_else(|e| panic!("docs/schema/{schema} does not compile: {e}"));
            Arc::new(v)
        })
        .clone()
}

/// Every way `doc` breaks `schema` (a file of docs/schema/, with an
/// optional `#fragment`), one line each: where, and what is wrong.
pub fn schema_errors(doc: &Value, schema: &str) -> Vec<String> {
    validator(schema)
        .iter_errors(doc)
        .map(|e| {
            let at = e.instance_path().as_str().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("{at}: {e}")
        })
        .collect()
}

/// `text`, one JSON document (surrounding whitespace aside), parsed and
/// checked against docs/schema/`schema`.
pub fn parse_doc(text: impl AsRef<[u8]>, schema: &str) -> Value {
    let text = String::from_utf8_lossy(text.as_ref());
    let doc = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not a JSON document ({e}): {text:?}"));
    assert_schema(&doc, schema);
    doc
}

/// Panics, listing every validation error, unless `doc` matches
/// docs/schema/`schema`.
pub fn assert_schema(doc: &Value, schema: &str) {
    let errors = schema_errors(doc, schema);
    assert!(
        errors.is_empty(),
        "the document does not match docs/schema/{schema}:\n  {}\ndocument: {doc}",
        errors.join("\n  ")
    );
}
