//! Export files on disk: the JSON document and one CSV file per record kind.
//!
//! The daemon produces the export document; this module only writes it out. Files are
//! created 0600 and directories 0700, since an export holds everything the household
//! wrote. It must not change the records: CSV is a flat view for spreadsheets, and JSON
//! is the format `hearth import` reads back.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::CliError;

/// The export format marker, checked before an import is sent.
pub(crate) const FORMAT: &str = "hearth-export";
/// The export version this build writes and reads.
pub(crate) const VERSION: u64 = 1;

/// Writes `bytes` to a new private file, replacing an older one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::disk("create", path, &e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::disk("write", path, &e))
}

/// Writes one `<kind>.csv` per record kind into `dir`; returns the files written.
pub(crate) fn write_csv_dir(dir: &Path, export: &Value) -> Result<Vec<PathBuf>, CliError> {
    if dir.is_file() {
        return Err(CliError::Invalid {
            message: format!(
                "{} is a file, and CSV export writes one file per record kind",
                dir.display()
            ),
            hint: "give a directory with --out, for example --out hearth-csv".into(),
        });
    }
    hearth_api::paths::ensure_private_dir(dir)
        .map_err(|e| CliError::disk("create the directory", dir, &e))?;
    let mut written = Vec::new();
    for (kind, records) in export["records"].as_object().into_iter().flatten() {
        let records = records.as_array().cloned().unwrap_or_default();
        let path = dir.join(format!("{}.csv", safe_file_stem(kind)));
        write_private(&path, to_csv(&records).as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Keeps a kind name usable as a file name, whatever the daemon sends.
fn safe_file_stem(kind: &str) -> String {
    kind.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Flattens records into CSV: nested objects become `parent.child` columns, lists are
/// joined with `;`. The `id` column comes first, the rest in name order.
pub(crate) fn to_csv(records: &[Value]) -> String {
    let rows: Vec<Map<String, Value>> = records
        .iter()
        .map(|r| {
            let mut flat = Map::new();
            flatten("", r, &mut flat);
            flat
        })
        .collect();
    let mut columns: BTreeSet<&str> = BTreeSet::new();
    for row in &rows {
        columns.extend(row.keys().map(String::as_str));
    }
    let mut ordered: Vec<&str> = Vec::with_capacity(columns.len());
    if columns.remove("id") {
        ordered.push("id");
    }
    ordered.extend(columns);

    let mut out = String::new();
    out.push_str(
        &ordered
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for row in &rows {
        let cells: Vec<String> = ordered
            .iter()
            .map(|c| quote(&cell(row.get(*c).unwrap_or(&Value::Null))))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// Quotes a CSV field (RFC 4180) when it holds a separator, a quote or a line break.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Checks that a document is an export this build understands, before sending it.
pub(crate) fn check_export(doc: &Value, source: &str) -> Result<(), CliError> {
    let hint = "import reads the JSON written by `hearth export` (not the CSV files)";
    if doc["format"].as_str() != Some(FORMAT) {
        return Err(CliError::Invalid {
            message: format!("{source} is not a hearth export (no \"format\": \"{FORMAT}\")"),
            hint: hint.into(),
        });
    }
    match doc["version"].as_u64() {
        Some(VERSION) => {}
        Some(v) => {
            return Err(CliError::Invalid {
                message: format!(
                    "{source} is export version {v}, and this hearth reads version {VERSION}"
                ),
                hint: "update hearth on this device, then import again".into(),
            })
        }
        None => {
            return Err(CliError::Invalid {
                message: format!("{source} has no export version"),
                hint: hint.into(),
            })
        }
    }
    if !doc["records"].is_object() {
        return Err(CliError::Invalid {
            message: format!("{source} has no \"records\" object"),
            hint: hint.into(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn csv_flattens_nested_fields_and_quotes_text() {
        let records = vec![
            json!({"id": "a", "battery": 40, "signs": {"dread": 3}, "body": ["fatigue", "sleep"],
                   "note": "tired, \"very\"\nreally"}),
            json!({"id": "b", "battery": 90, "signs": {"numb": 1}}),
        ];
        let csv = to_csv(&records);
        let mut lines = csv.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "id,battery,body,note,signs.dread,signs.numb"
        );
        assert_eq!(
            lines.next().unwrap(),
            "a,40,fatigue;sleep,\"tired, \"\"very\"\"\nreally\",3,"
        );
    }

    #[test]
    fn csv_of_nothing_is_an_empty_header() {
        assert_eq!(to_csv(&[]), "\r\n");
    }

    #[test]
    fn csv_dir_gets_one_private_file_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("csv");
        let export = json!({"format": FORMAT, "version": 1,
            "records": {"checkins": [{"id": "a"}], "moments": [], "../evil": []}});
        let files = write_csv_dir(&out, &export).unwrap();
        assert_eq!(files.len(), 3);
        assert!(out.join("checkins.csv").exists());
        assert!(out.join("___evil.csv").exists());
        let mode = fs::metadata(out.join("moments.csv"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn import_check_names_what_is_wrong() {
        assert!(check_export(&json!({"format": FORMAT, "version": 1, "records": {}}), "f").is_ok());
        let e = check_export(&json!({"hello": 1}), "f.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a hearth export"), "{e}");
        let e = check_export(&json!({"format": FORMAT, "version": 9, "records": {}}), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 9"), "{e}");
    }
}
