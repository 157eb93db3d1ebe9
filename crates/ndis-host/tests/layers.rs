//! ndis-host is laid out in layers (see the crate documentation in src/lib.rs): no module may name a module of
//! a higher layer, and the modules may not import each other in a circle. This test reads every source file
//! of the crate, collects the `crate::`, `super::` and `self::` paths it uses (in `use` trees and inline,
//! outside comments, strings and `#[cfg(test)]` code) and checks them against [`LAYERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of the crate with its layer, bottom (0) to top. A new module must be added here.
const LAYERS: &[(&str, u8)] = &[
    // 0 — foundations: PE images, the WDK tables, trace, verifier findings, fault plan, raw memory, the
    // processors' IRQL and signal handling, far sides of adapters. None knows the machine.
    ("wdk", 0),
    ("image", 0),
    ("loader", 0),
    ("cr8patch", 0),
    ("privileged", 0),
    ("oid", 0),
    ("trace", 0),
    ("verifier", 0),
    ("faults", 0),
    ("backend", 0),
    ("backend::tap", 0),
    ("native", 0),
    ("native::call", 0),
    ("native::cpu", 0),
    ("native::mapping", 0),
    ("native::memory", 0),
    ("native::user_memory", 0),
    ("native::stack", 0),
    ("native::inline", 0),
    ("native::watch", 0),
    ("native::tap", 0),
    // 1 — the state of each model and the kernel objects' memory layouts: dispatcher and timers, tokens and
    // descriptors, IRPs/MDLs/file objects, NBLs, the I/O manager's and NDIS's books.
    ("ke", 1),
    ("security", 1),
    ("native::irp", 1),
    ("native::ndis_objects", 1),
    ("io::state", 1),
    ("ndis::state", 1),
    // 2 — the machine: one lock over all that state, the verifier's and the trace's books, the processors.
    ("machine", 2),
    // 3 — the models that act on the machine and call into the driver: the I/O manager, NDIS, driver calls.
    ("native::dispatch", 3),
    ("io", 3),
    ("ndis", 3),
    // 4 — the exported ABI: the kernel and NDIS functions the driver imports (and a fake driver for tests).
    ("native::exports", 4),
    ("native::exports::io", 4),
    ("native::exports::ke", 4),
    ("native::exports::ndis", 4),
    ("native::exports::ndis_extra", 4),
    ("native::exports::rtl", 4),
    ("native::exports::security", 4),
    ("native::exports::sync", 4),
    ("native::exports::timers", 4),
    ("native::fake_driver", 4),
    // 5 — the public API.
    ("host", 5),
    ("host::io", 5),
    ("host::ndis", 5),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a source file defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.strip_suffix(".rs").expect(".rs").to_owned();
    if stem != "mod" {
        parts.push(stem);
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source with comments, string and char literals blanked out (their lengths kept).
fn code_only(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &s[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            out.push_str(&" ".repeat(end));
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.extend(rest[..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
            i += end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|&c| c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let open = 2 + hashes;
            let end = rest[open..].find(&close).map_or(rest.len(), |e| open + e + close.len());
            out.extend(rest[..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
            i += end;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            let end = (j + 1).min(rest.len());
            out.extend(rest[..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
            i += end;
        } else if rest.starts_with('\'') && (rest.get(2..3) == Some("'") || rest.starts_with("'\\")) {
            let end = rest[1..].find('\'').map_or(1, |e| e + 2);
            out.push_str(&" ".repeat(end));
            i += end;
        } else {
            let c = rest.chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Removes `#[cfg(test)]` items with a body (`mod tests { ... }`), and returns the names of `#[cfg(test)]
/// mod name;` declarations (test modules in files of their own).
fn drop_test_code(code: &str) -> (String, Vec<String>) {
    let mut out = code.to_owned();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|a| a + from) {
        let after = at + "#[cfg(test)]".len();
        let semi = out[after..].find(';').map(|s| s + after);
        let brace = out[after..].find('{').map(|s| s + after);
        match (semi, brace) {
            (Some(s), b) if b.is_none_or(|b| s < b) => {
                let decl = out[after..s].trim();
                if let Some(name) = decl.strip_prefix("mod ").or_else(|| decl.strip_prefix("pub mod ")) {
                    test_files.push(name.trim().to_owned());
                }
                from = s;
            }
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = out.len();
                for (k, ch) in out[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                out.replace_range(at..end, &" ".repeat(end - at));
                from = at;
            }
            _ => break,
        }
    }
    (out, test_files)
}

/// Expands `use` trees into full paths (`use crate::{a::X, b::{c, d}};` → `crate::a::X`, `crate::b::c`, ...).
fn expand_use(tree: &str) -> Vec<String> {
    fn split_top(s: &str) -> Vec<&str> {
        let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts
    }
    let tree: String = tree.split_whitespace().collect();
    let mut out = Vec::new();
    for part in split_top(&tree) {
        if part.is_empty() {
            continue;
        }
        match part.find('{') {
            Some(b) if part.ends_with('}') => {
                let prefix = &part[..b];
                for inner in expand_use(&part[b + 1..part.len() - 1]) {
                    out.push(format!("{prefix}{inner}"));
                }
            }
            _ => out.push(part.split(" as ").next().unwrap_or(part).to_owned()),
        }
    }
    out
}

/// Every path the code names that starts at `crate`, `super` or `self`.
fn paths_used(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    // `use` statements (their trees may span lines and nest).
    let mut without_uses = String::new();
    while let Some(at) = find_use(rest) {
        without_uses.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after.find(';').unwrap_or(after.len());
        let tree = after[..end].split_once("use").map_or("", |(_, t)| t);
        paths.extend(expand_use(tree));
        rest = &after[end..];
    }
    without_uses.push_str(rest);
    // Inline paths.
    let bytes = without_uses.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = without_uses[from..].find(start).map(|i| i + from) {
            let boundary =
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
            let end = without_uses[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(without_uses.len(), |e| e + i);
            if boundary {
                paths.push(without_uses[i..end].trim_end_matches(':').to_owned());
            }
            from = end.max(i + 1);
        }
    }
    paths
}

/// The next `use` statement's start (`use` or `pub use` / `pub(crate) use` as a whole word).
fn find_use(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find("use ").map(|i| i + from) {
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if word_start {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Resolves a used path to the longest module of `known` it names, seen from module `from`.
fn resolve(path: &str, from: &str, from_is_mod_rs: bool, known: &BTreeSet<String>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    // `self::`/`super::` are relative to the module; a module's own file is its `self`.
    let mut base: Vec<String> =
        if from.is_empty() { Vec::new() } else { from.split("::").map(str::to_owned).collect() };
    let _ = from_is_mod_rs;
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("self") => {
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
        }
        _ => return None,
    }
    let mut full = base;
    full.extend(segs.iter().map(|s| (*s).to_owned()));
    (1..=full.len()).rev().map(|n| full[..n].join("::")).find(|m| known.contains(m))
}

/// Whether `a` is `b` or one of its ancestors/descendants (a parent declares and re-exports its children,
/// a child sees its parent: one unit for the circle check).
fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// (module, file) of every module of the crate's library that is not test code; the crate root and the
/// binary are left out (the root only declares modules, main.rs uses the public API).
fn modules() -> Vec<(String, PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut test_modules = BTreeSet::new();
    let mut out = Vec::new();
    for f in &files {
        let m = module_of(f);
        if m == "lib" || m == "main" {
            continue;
        }
        let text = std::fs::read_to_string(f).expect("read");
        let (code, tests) = drop_test_code(&code_only(&text));
        for t in tests {
            test_modules.insert(if m.is_empty() { t } else { format!("{m}::{t}") });
        }
        // `#[cfg(test)] #[path = "x_tests.rs"] mod tests;`: the file next to this one is test code.
        for (at, _) in text.match_indices("#[cfg(test)]") {
            let after = text[at + "#[cfg(test)]".len()..].trim_start();
            if let Some(p) = after.strip_prefix("#[path = \"").and_then(|p| p.split('"').next()) {
                let dir = f.parent().expect("a directory");
                test_modules.insert(module_of(&dir.join(p)));
            }
        }
        out.push((m, f.clone(), code));
    }
    out.retain(|(m, _, _)| !test_modules.contains(m));
    out
}

/// Every (from, to) module dependency whose `to` lies in a higher layer, and the modules missing from
/// [`LAYERS`].
fn check(mods: &[(String, PathBuf, String)]) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let known: BTreeSet<String> = mods.iter().map(|(m, _, _)| m.clone()).collect();
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, f, code) in mods {
        let Some(&mine) = layer.get(m.as_str()) else {
            problems.push(format!("module {m} ({}) has no layer: add it to LAYERS", f.display()));
            continue;
        };
        let is_mod_rs = f.file_name().is_some_and(|n| n == "mod.rs");
        for p in paths_used(code) {
            let Some(target) = resolve(&p, m, is_mod_rs, &known) else { continue };
            if target == *m {
                continue;
            }
            let theirs = layer.get(target.as_str()).copied().unwrap_or(u8::MAX);
            if theirs > mine {
                problems.push(format!("{m} (layer {mine}) uses `{p}`, in {target} (layer {theirs}) above it"));
            }
            if !related(m, &target) {
                graph.entry(m.clone()).or_default().insert(target);
            }
        }
    }
    (problems, graph)
}

/// A circle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for next in graph.get(n).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_a_module_of_a_higher_layer() {
    let mods = modules();
    assert!(mods.len() >= LAYERS.len() - 2, "found only {} modules under {}", mods.len(), src().display());
    let (problems, _) = check(&mods);
    assert!(problems.is_empty(), "layering (crates/ndis-host/src/lib.rs documents it):\n{}", problems.join("\n"));
    // Every listed module exists (a renamed module must be renamed here too).
    let found: BTreeSet<&str> = mods.iter().map(|(m, _, _)| m.as_str()).collect();
    let stale: Vec<&str> = LAYERS.iter().map(|(m, _)| *m).filter(|m| !found.contains(m)).collect();
    assert!(stale.is_empty(), "LAYERS lists modules that do not exist: {stale:?}");
}

#[test]
fn the_modules_import_each_other_in_no_circle() {
    let (_, graph) = check(&modules());
    assert_eq!(find_cycle(&graph), None, "a circle of imports");
}

#[test]
fn the_check_catches_an_upward_import_in_every_form_it_can_be_written() {
    let fake =
        |m: &str, code: &str| (m.to_owned(), src().join(format!("{}.rs", m.replace("::", "/"))), code.to_owned());
    let cases = [
        "use crate::host::Host;",
        "use crate::{trace::Arg, host::{self, Host}};",
        "fn f() { crate::host::Host::load_file(p, c); }",
        "pub(crate) use crate::native::exports::table;",
    ];
    for code in cases {
        let code = drop_test_code(&code_only(code)).0;
        let (problems, _) = check(&[fake("machine", &code), fake("host", ""), fake("native::exports", "")]);
        assert!(problems.iter().any(|p| p.starts_with("machine (layer 2) uses")), "{code}: {problems:?}");
    }
    // A child module below its parent may not use the parent either.
    let (problems, _) = check(&[fake("ndis::state", "use crate::ndis::bind;"), fake("ndis", "")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    // `super::` from a file of its own, and what comments, strings and test code say, count as written.
    let (problems, _) = check(&[fake("native::irp", "use super::exports::Exports;"), fake("native::exports", "")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    for harmless in [
        "// use crate::host::Host;\n/// [`Host`](crate::host::Host)\nconst S: &str = \"crate::host::Host\";",
        "#[cfg(test)]\nmod tests {\n    use crate::host::Host;\n}\n",
    ] {
        let code = drop_test_code(&code_only(harmless)).0;
        let (problems, _) = check(&[fake("machine", &code), fake("host", "")]);
        assert!(problems.is_empty(), "{harmless}: {problems:?}");
    }
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert!(find_cycle(&g).is_some());
}
