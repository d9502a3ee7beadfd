//! Repository rules, written as tests so `cargo xtask ci` enforces them: every Rust source file
//! opens with a `//!` paragraph (but data fragments in `tests/data`, included by a module), and
//! each crate depends only on the layers beneath it.

#[cfg(test)]
mod tests {
    use crate::command::root;
    use std::path::{Path, PathBuf};

    /// Each workspace crate's folder under `crates/`, its package name, and the workspace crates
    /// it may depend on (in `[dependencies]` and `[dev-dependencies]`): the layers beneath it, and
    /// nothing above or beside it.
    const LAYERS: &[(&str, &str, &[&str])] = &[
        ("kv-core", "kv-core", &[]),
        ("wasm-binding", "wasm-binding", &["kv-core"]),
        ("evm-binding", "evm-binding", &["kv-core"]),
        ("conformance", "evm-conformance", &["kv-core", "evm-binding"]),
        ("cross-read", "cross-read", &["kv-core", "wasm-binding", "evm-binding"]),
        ("chain", "xstate-chain", &["kv-core", "wasm-binding", "evm-binding", "cross-read"]),
        ("node", "xstate-node", &["kv-core", "wasm-binding", "evm-binding", "cross-read", "xstate-chain"]),
        ("xstate", "xstate", &["kv-core", "wasm-binding", "evm-binding", "cross-read", "xstate-chain", "xstate-node"]),
        // A tool above every library; no crate depends on it.
        (
            "fuzz",
            "xstate-fuzz",
            &["kv-core", "wasm-binding", "evm-binding", "cross-read", "xstate-chain", "xstate-node"],
        ),
    ];

    fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, files);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }

    #[test]
    fn every_source_file_opens_with_a_module_doc() {
        let mut files = Vec::new();
        for dir in ["crates", "xtask/src", "guest"] {
            rust_files(&root().join(dir), &mut files);
        }
        files.retain(|file| !file.components().any(|part| part.as_os_str() == "target"));
        // Test data pulled in with `include!` is a fragment of the module that includes it, where
        // an inner `//!` doc cannot stand; such files sit in a `tests/data` folder.
        files.retain(|file| !file.parent().is_some_and(|dir| dir.ends_with("tests/data")));
        assert!(files.len() > 40, "found only {} files", files.len());
        let missing: Vec<String> = files
            .iter()
            .filter(|file| !std::fs::read_to_string(file).unwrap_or_default().starts_with("//!"))
            .map(|file| file.display().to_string())
            .collect();
        assert!(missing.is_empty(), "files without a leading //! paragraph: {missing:?}");
    }

    /// The workspace crates named in the dependency sections of a manifest.
    fn workspace_dependencies(manifest: &str) -> Vec<String> {
        let names: Vec<&str> = LAYERS.iter().map(|(_, package, _)| *package).collect();
        let mut in_dependencies = false;
        let mut found = Vec::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_dependencies = line == "[dependencies]" || line == "[dev-dependencies]";
                continue;
            }
            let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
            if in_dependencies && names.contains(&name) {
                found.push(name.to_owned());
            }
        }
        found
    }

    #[test]
    fn crates_depend_only_on_the_layers_beneath_them() {
        for (folder, name, allowed) in LAYERS {
            let manifest = std::fs::read_to_string(root().join("crates").join(folder).join("Cargo.toml")).unwrap();
            // A crate may name itself as a dev-dependency to turn on its own test-support feature.
            for dependency in workspace_dependencies(&manifest).into_iter().filter(|dependency| dependency != name) {
                assert!(allowed.contains(&dependency.as_str()), "{name} must not depend on {dependency}");
            }
        }
        // xtask builds in seconds because it depends on no workspace crate.
        let xtask = std::fs::read_to_string(root().join("xtask/Cargo.toml")).unwrap();
        assert!(workspace_dependencies(&xtask).is_empty());
    }

    /// The normal dependencies of a manifest (`[dependencies]` only), by name, with whether each is
    /// optional (behind a feature).
    fn normal_dependencies(manifest: &str) -> Vec<(String, bool)> {
        let mut in_dependencies = false;
        let mut found = Vec::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_dependencies = line == "[dependencies]";
                continue;
            }
            let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
            if in_dependencies && !name.is_empty() && !name.starts_with('#') {
                found.push((name.to_owned(), line.contains("optional = true")));
            }
        }
        found
    }

    /// Libraries a chain embeds carry only what their job needs: the tools' dependencies (command
    /// lines, progress bars, allocators, temporary files, fixture formats) live in the tool crates
    /// (`xstate`, `evm-conformance`, `xstate-benches`), never in a library's normal dependencies.
    #[test]
    fn libraries_carry_no_tool_dependencies() {
        const TOOLS: &[&str] =
            &["clap", "indicatif", "mimalloc", "tempfile", "revm-statetest-types", "proptest", "gungraun"];
        let libraries = ["kv-core", "wasm-binding", "evm-binding", "cross-read", "chain", "node"];
        for folder in libraries {
            let manifest = std::fs::read_to_string(root().join("crates").join(folder).join("Cargo.toml")).unwrap();
            for (dependency, _) in normal_dependencies(&manifest) {
                assert!(
                    !TOOLS.contains(&dependency.as_str()),
                    "library {folder} depends on the tool crate {dependency}"
                );
            }
        }
        // The phase C binding reads JSON only behind its `artifacts` feature.
        let evm = std::fs::read_to_string(root().join("crates/evm-binding/Cargo.toml")).unwrap();
        for (dependency, optional) in normal_dependencies(&evm) {
            assert!(
                !dependency.starts_with("serde") || optional,
                "evm-binding depends on {dependency} unconditionally"
            );
        }
    }

    #[test]
    fn the_rule_reader_sees_dependencies() {
        let manifest = "[package]\nname = \"x\"\n[dependencies]\nkv-core.workspace = true\nserde = \"1\"\n[dev-dependencies]\nxstate-chain = { path = \"..\" }\n";
        assert_eq!(workspace_dependencies(manifest), ["kv-core", "xstate-chain"]);
    }
}
