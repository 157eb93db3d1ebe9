//! A small INF reader and the rules rawlink's protocol INF must follow.
//!
//! Reading follows Learn's "General Syntax Rules for INF Files" (install/general-syntax-rules-for-inf-files):
//! case-insensitive section names and keys, `;` comments outside quoted strings, `\` at the end of a line
//! (before any comment) continues the entry on the next line, commas separate values, `""` inside a quoted
//! string is a quote, `%%` is a percent sign, `%strkey%` tokens come from `[Strings]`, and sections with the
//! same name are merged. Numeric tokens such as `%13%` are DIRIDs and stay as they are.
//!
//! The rules are those of a NetTrans (protocol) INF (Learn: network/installation-requirements-for-network-protocols
//! and the pages cited by each check) plus the InfVerif-style package rules rawlink wants: HKR-only registry
//! writes, driver-store DIRID 13, every referenced section present, every copied file listed and shipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The setup class GUID of network protocols (Learn: install/system-defined-device-setup-classes-available-to-vendors).
pub const NETTRANS_CLASS_GUID: &str = "{4d36e975-e325-11ce-bfc1-08002be10318}";
/// First Windows build whose network installer can run a package from the driver store (DIRID 13)
/// (Learn: network/manufacturer-section-in-a-network-inf-file).
pub const DRIVER_STORE_MIN_BUILD: u32 = 25319;
/// FLG_ADDREG_TYPE_MULTI_SZ (Learn: install/inf-addreg-directive).
const FLG_ADDREG_TYPE_MULTI_SZ: u32 = 0x0001_0000;
/// The bits of an AddReg flags value that select the value type.
const FLG_ADDREG_TYPE_MASK: u32 = 0xFFFF_0001;

/// How the file was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 7-bit ASCII without a byte order mark: valid as "ANSI" in every code page.
    Ascii,
    /// UTF-16 little endian with the FF FE byte order mark ("Unicode" in Windows tools).
    Utf16Le,
}

/// Decodes an INF the way Windows accepts it: "INF files must be saved with ANSI or Unicode (UTF-16 LE) file
/// encoding ... If your INF contains non-ASCII characters, save it as a Unicode (UTF-16 LE) file"
/// (Learn: install/general-guidelines-for-inf-files). UTF-8 (with or without a BOM) is neither, and an
/// 8-bit file with non-ASCII bytes depends on the code page of the machine reading it: both are rejected.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), String> {
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        if body.len() % 2 != 0 {
            return Err("UTF-16LE file with an odd number of bytes".to_owned());
        }
        let units: Vec<u16> = body.chunks_exact(2).filter_map(|p| p.try_into().ok()).map(u16::from_le_bytes).collect();
        let text = String::from_utf16(&units).map_err(|e| format!("invalid UTF-16LE: {e}"))?;
        return Ok((text, Encoding::Utf16Le));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(
            "encoding: UTF-8 with a byte order mark; INF files must be ASCII/ANSI or UTF-16LE with a BOM".to_owned()
        );
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err("encoding: UTF-16 big endian; INF files must be ASCII/ANSI or UTF-16LE with a BOM".to_owned());
    }
    if let Some(at) = bytes.iter().position(|b| !b.is_ascii()) {
        let line = bytes.iter().take(at).filter(|&&b| b == b'\n').count() + 1;
        return Err(format!(
            "encoding: non-ASCII byte 0x{:02X} on line {line}; save the INF as UTF-16LE with a BOM or keep it ASCII",
            bytes.get(at).copied().unwrap_or_default()
        ));
    }
    if bytes.contains(&0) {
        return Err("encoding: NUL bytes in an 8-bit file (UTF-16 without a byte order mark?)".to_owned());
    }
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| format!("encoding: {e}"))?;
    Ok((text, Encoding::Ascii))
}

/// One comma-separated value of an entry, with its quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub text: String,
    pub quoted: bool,
}

/// One entry: `key = v1, v2, ...` or a bare `v1, v2, ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Line number (1-based) where the entry starts.
    pub line: usize,
    pub key: Option<String>,
    pub fields: Vec<Field>,
}

impl Entry {
    /// The text of field `i`, or "" when absent.
    pub fn field(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", |f| f.text.as_str())
    }

    fn key_is(&self, key: &str) -> bool {
        self.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key))
    }

    /// The entry as written, for messages.
    pub fn display(&self) -> String {
        let values: Vec<&str> = self.fields.iter().map(|f| f.text.as_str()).collect();
        match &self.key {
            Some(key) => format!("{key} = {}", values.join(", ")),
            None => values.join(", "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    /// Entries whose key is `key` (case-insensitive).
    pub fn entries_with_key<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key_is(key))
    }
}

/// A parsed INF.
#[derive(Debug, Clone)]
pub struct Inf {
    pub sections: Vec<Section>,
    strings: BTreeMap<String, String>,
}

impl Inf {
    /// Parses INF text. Errors are syntax problems, each naming its line.
    pub fn parse(text: &str) -> Result<Inf, Vec<String>> {
        let mut errors = Vec::new();
        let mut sections: Vec<Section> = Vec::new();
        let mut current: Option<usize> = None;
        let mut pending = String::new();
        let mut pending_line = 0;

        let physical: Vec<&str> = split_lines(text);
        for (index, raw) in physical.iter().enumerate() {
            let line_no = index + 1;
            let code = strip_comment(raw);
            let code = code.trim_end();
            if pending.is_empty() {
                pending_line = line_no;
            }
            if let Some(head) = code.strip_suffix('\\') {
                // Line continuation (Learn: general syntax rules, "Line Format, Continuation, and Comments").
                pending.push_str(head);
                continue;
            }
            pending.push_str(code);
            let logical = std::mem::take(&mut pending);
            let logical = logical.trim();
            if logical.is_empty() {
                continue;
            }
            if let Some(rest) = logical.strip_prefix('[') {
                match rest.strip_suffix(']') {
                    Some(name) if !name.trim().is_empty() => {
                        let name = name.trim().trim_matches('"').to_owned();
                        if let Some(i) = sections.iter().position(|s| s.name.eq_ignore_ascii_case(&name)) {
                            // "If more than one section in an INF file has the same name, the system merges their
                            // entries" - keep the behaviour, the checker flags it as a style problem.
                            current = Some(i);
                        } else {
                            sections.push(Section { name, line: line_no, entries: Vec::new() });
                            current = Some(sections.len() - 1);
                        }
                    }
                    _ => errors.push(format!("line {line_no}: malformed section header `{logical}`")),
                }
                continue;
            }
            let Some(section) = current.and_then(|i| sections.get_mut(i)) else {
                errors.push(format!("line {line_no}: entry `{logical}` before the first section"));
                continue;
            };
            match parse_entry(logical) {
                Ok((key, fields)) => section.entries.push(Entry { line: pending_line, key, fields }),
                Err(e) => errors.push(format!("line {pending_line}: {e}")),
            }
        }
        if !pending.is_empty() {
            errors.push(format!("line {pending_line}: the file ends inside a continued line"));
        }

        let mut strings = BTreeMap::new();
        if let Some(s) = sections.iter().find(|s| s.name.eq_ignore_ascii_case("Strings")) {
            for e in &s.entries {
                match &e.key {
                    Some(key) => {
                        let value = e.fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(",");
                        if strings.insert(key.to_ascii_lowercase(), value).is_some() {
                            errors.push(format!("line {}: string key `{key}` is defined twice", e.line));
                        }
                    }
                    None => errors.push(format!("line {}: [Strings] entry without a key", e.line)),
                }
            }
        }
        if errors.is_empty() {
            Ok(Inf { sections, strings })
        } else {
            Err(errors)
        }
    }

    /// The section called `name` (case-insensitive).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Substitutes `%strkey%` tokens and `%%`; numeric tokens (DIRIDs such as `%13%`) are kept.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 1..).unwrap_or_default();
            let Some(end) = after.find('%') else {
                return Err(format!("unterminated `%` in `{text}`"));
            };
            let token = after.get(..end).unwrap_or_default();
            if token.is_empty() {
                out.push('%');
            } else if token.bytes().all(|b| b.is_ascii_digit()) {
                let _ = write!(out, "%{token}%");
            } else {
                match self.strings.get(&token.to_ascii_lowercase()) {
                    Some(value) => out.push_str(value),
                    None => return Err(format!("string token `%{token}%` is not defined in [Strings]")),
                }
            }
            rest = after.get(end + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The expanded value of `key` in `section` when it appears exactly once.
    fn single(&self, section: &Section, key: &str, problems: &mut Vec<String>) -> Option<(String, usize)> {
        let found: Vec<&Entry> = section.entries_with_key(key).collect();
        match found.as_slice() {
            [] => {
                problems.push(format!("[{}]: `{key}` is missing", section.name));
                None
            }
            [entry] => {
                let joined = entry.fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(",");
                match self.expand(&joined) {
                    Ok(v) => Some((v, entry.line)),
                    Err(e) => {
                        problems.push(format!("[{}] line {}: {e}", section.name, entry.line));
                        None
                    }
                }
            }
            [first, ..] => {
                problems.push(format!("[{}] line {}: `{key}` appears more than once", section.name, first.line));
                None
            }
        }
    }
}

/// Splits on CRLF, LF or CR.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\r') => {
                lines.push(text.get(start..i).unwrap_or_default());
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            Some(b'\n') => {
                lines.push(text.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(text.get(start..).unwrap_or_default());
    }
    lines
}

/// The line up to a `;` that is outside a quoted string.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return line.get(..i).unwrap_or_default(),
            _ => {}
        }
    }
    line
}

/// Splits `key = a, "b, c", d` into the key and unquoted fields.
fn parse_entry(line: &str) -> Result<(Option<String>, Vec<Field>), String> {
    let mut quoted = false;
    let mut eq = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted => {
                eq = Some(i);
                break;
            }
            _ => {}
        }
    }
    let (key, value) = match eq {
        Some(i) => {
            let key = line.get(..i).unwrap_or_default().trim().trim_matches('"').to_owned();
            if key.is_empty() {
                return Err(format!("entry `{line}` has an empty key"));
            }
            (Some(key), line.get(i + 1..).unwrap_or_default())
        }
        None => (None, line),
    };
    let mut fields = Vec::new();
    let mut text = String::new();
    let mut field_quoted = false;
    let mut in_quotes = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                text.push('"');
            }
            '"' => {
                in_quotes = !in_quotes;
                field_quoted = true;
            }
            ',' if !in_quotes => {
                fields.push(finish_field(&text, field_quoted));
                text.clear();
                field_quoted = false;
            }
            _ => text.push(c),
        }
    }
    if in_quotes {
        return Err(format!("unterminated quoted string in `{line}`"));
    }
    fields.push(finish_field(&text, field_quoted));
    Ok((key, fields))
}

fn finish_field(text: &str, quoted: bool) -> Field {
    // Blanks around a value go; rawlink's INF has no quoted value with leading or trailing blanks.
    Field { text: text.trim().to_owned(), quoted }
}

/// A number as INF files write them: decimal or `0x` hexadecimal.
pub fn parse_number(text: &str) -> Option<u32> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// What a rawlink INF must contain.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// The protocol name registered with NDIS, which must also be the service name.
    pub protocol_name: &'a str,
    /// The ComponentId given to netcfg (`-i`).
    pub component_id: &'a str,
    pub catalog_file: &'a str,
    pub driver_binary: &'a str,
    /// `Some(arch)`: a stamped INF for `arch` (no `$ARCH$` left); `None`: the INX source.
    pub stamped_arch: Option<&'a str>,
    /// When set, every file in `[SourceDisksFiles]` must exist in this folder.
    pub package_dir: Option<&'a Path>,
}

/// Decodes, parses and checks an INF file's bytes; returns every problem found (empty = accepted).
pub fn check_bytes(bytes: &[u8], expect: &Expect<'_>) -> Vec<String> {
    let text = match decode(bytes) {
        Ok((text, _)) => text,
        Err(e) => return vec![e],
    };
    check_text(&text, expect)
}

/// Parses and checks INF text.
pub fn check_text(text: &str, expect: &Expect<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(arch) = expect.stamped_arch {
        for (i, line) in split_lines(text).iter().enumerate() {
            let upper = line.to_ascii_uppercase();
            for token in ["$ARCH$", "$KMDFVERSION$", "$KMDFCOINSTALLERVERSION$", "$UMDFVERSION$"] {
                if upper.contains(token) {
                    problems.push(format!(
                        "line {}: `{token}` placeholder left in a stamped INF (stampinf -a {arch} replaces it)",
                        i + 1
                    ));
                }
            }
        }
    }
    match Inf::parse(text) {
        Ok(inf) => problems.extend(check(&inf, expect)),
        Err(errors) => problems.extend(errors.into_iter().map(|e| format!("syntax: {e}"))),
    }
    problems
}

/// The rules. Every problem is one message naming the section (and line) and what is wrong.
pub fn check(inf: &Inf, expect: &Expect<'_>) -> Vec<String> {
    let mut c = Checker { inf, expect, problems: Vec::new(), referenced: BTreeSet::new(), names: Vec::new() };
    c.check_strings();
    c.check_version();
    let installs = c.check_manufacturer_and_models();
    let mut copied: BTreeSet<String> = BTreeSet::new();
    for (install, dirid) in &installs {
        c.check_install(install, *dirid, &mut copied);
    }
    c.check_destination_dirs();
    c.check_source_disks(&copied);
    c.check_service_names();
    c.check_unreferenced();
    // Sections shared by several install sections would report the same problem more than once.
    let mut seen = BTreeSet::new();
    c.problems.into_iter().filter(|p| seen.insert(p.clone())).collect()
}

struct Checker<'i, 'e> {
    inf: &'i Inf,
    expect: &'e Expect<'e>,
    problems: Vec<String>,
    /// Lower-cased names of sections something refers to.
    referenced: BTreeSet<String>,
    /// (where, name) of every place that names the protocol's service.
    names: Vec<(String, String)>,
}

impl<'i> Checker<'i, '_> {
    fn problem(&mut self, message: String) {
        self.problems.push(message);
    }

    /// Marks `name` as referenced from `from`; reports it when it does not exist.
    fn reference(&mut self, name: &str, from: &str) -> Option<&'i Section> {
        self.referenced.insert(name.to_ascii_lowercase());
        let inf: &'i Inf = self.inf;
        let found = inf.section(name);
        if found.is_none() {
            self.problem(format!("missing section [{name}] (referenced by {from})"));
        }
        found
    }

    fn check_strings(&mut self) {
        if self.inf.section("Strings").is_none() {
            self.problem("missing section [Strings] (every user-visible text is a %strkey% token)".to_owned());
        }
        let mut bad = Vec::new();
        for section in &self.inf.sections {
            for entry in &section.entries {
                let texts = entry.key.iter().map(String::as_str).chain(entry.fields.iter().map(|f| f.text.as_str()));
                for text in texts {
                    if let Err(e) = self.inf.expand(text) {
                        bad.push(format!("[{}] line {}: {e}", section.name, entry.line));
                    }
                }
            }
        }
        self.problems.extend(bad);
        for name in ["DestinationDirs", "SourceDisksNames", "SourceDisksFiles"] {
            let Some(section) = self.inf.section(name) else { continue };
            let mut seen = BTreeSet::new();
            for entry in &section.entries {
                if let Some(key) = &entry.key {
                    if !seen.insert(key.to_ascii_lowercase()) {
                        self.problems.push(format!("[{name}] line {}: `{key}` is listed twice", entry.line));
                    }
                }
            }
        }
    }

    /// Learn: install/inf-version-section, network/installation-requirements-for-network-protocols.
    fn check_version(&mut self) {
        self.referenced.insert("version".to_owned());
        let Some(version) = self.inf.section("Version") else {
            self.problem("missing section [Version]".to_owned());
            return;
        };
        let mut p = Vec::new();
        let inf = self.inf;
        if let Some((v, _)) = inf.single(version, "Signature", &mut p) {
            if !v.eq_ignore_ascii_case("$Windows NT$") {
                p.push(format!("[Version]: Signature is `{v}`, expected \"$Windows NT$\""));
            }
        }
        if let Some((v, _)) = inf.single(version, "Class", &mut p) {
            if !v.eq_ignore_ascii_case("NetTrans") {
                p.push(format!("[Version]: Class is `{v}`, a protocol driver's INF must say Class=NetTrans"));
            }
        }
        if let Some((v, _)) = inf.single(version, "ClassGuid", &mut p) {
            if !v.eq_ignore_ascii_case(NETTRANS_CLASS_GUID) {
                p.push(format!("[Version]: ClassGuid is `{v}`, NetTrans is {NETTRANS_CLASS_GUID}"));
            }
        }
        if let Some((v, _)) = inf.single(version, "Provider", &mut p) {
            if v.trim().is_empty() {
                p.push("[Version]: Provider is empty".to_owned());
            }
        }
        if let Some((v, _)) = inf.single(version, "CatalogFile", &mut p) {
            if !v.eq_ignore_ascii_case(self.expect.catalog_file) {
                p.push(format!("[Version]: CatalogFile is `{v}`, expected `{}`", self.expect.catalog_file));
            }
        }
        if let Some((v, _)) = inf.single(version, "PnpLockdown", &mut p) {
            if parse_number(&v) != Some(1) {
                p.push(format!("[Version]: PnpLockdown is `{v}`, expected 1"));
            }
        }
        if let Some((v, _)) = inf.single(version, "DriverVer", &mut p) {
            if let Err(e) = check_driver_ver(&v) {
                p.push(format!("[Version]: DriverVer `{v}`: {e}"));
            }
        }
        self.problems.extend(p);
    }

    /// Returns the install sections to check, each with the DIRID its files must go to.
    fn check_manufacturer_and_models(&mut self) -> Vec<(String, u32)> {
        self.referenced.insert("manufacturer".to_owned());
        let inf: &'i Inf = self.inf;
        let Some(manufacturer) = inf.section("Manufacturer") else {
            self.problem("missing section [Manufacturer]".to_owned());
            return Vec::new();
        };
        let [entry] = manufacturer.entries.as_slice() else {
            self.problem(format!(
                "[Manufacturer]: expected one manufacturer entry, found {}",
                manufacturer.entries.len()
            ));
            return Vec::new();
        };
        if entry.key.as_deref().map(|k| self.inf.expand(k)).and_then(Result::ok).is_none_or(|k| k.trim().is_empty()) {
            self.problem(format!("[Manufacturer] line {}: the manufacturer name is missing", entry.line));
        }
        let base = entry.field(0).to_owned();
        let decorations: Vec<String> = entry.fields.iter().skip(1).map(|f| f.text.clone()).collect();
        if decorations.is_empty() {
            self.problem(format!(
                "[Manufacturer] line {}: the Models section needs an NT{} decoration for 64-bit Windows",
                entry.line,
                self.expect.stamped_arch.unwrap_or("$ARCH$")
            ));
        }

        // (models section, build it starts at)
        let mut models = Vec::new();
        for decoration in &decorations {
            let arch_part = decoration.split('.').next().unwrap_or_default();
            let expected_arch = format!("NT{}", self.expect.stamped_arch.unwrap_or("$ARCH$"));
            if !arch_part.eq_ignore_ascii_case(&expected_arch) {
                self.problem(format!(
                    "[Manufacturer] line {}: decoration `{decoration}` should start with `{expected_arch}`",
                    entry.line
                ));
            }
            let build = decoration.split('.').nth(5).and_then(|b| b.parse::<u32>().ok());
            models.push((format!("{base}.{decoration}"), build));
        }
        let serves_new = models.iter().any(|(_, b)| b.is_some_and(|b| b >= DRIVER_STORE_MIN_BUILD));
        if !serves_new {
            self.problem(format!(
                "[Manufacturer]: no Models section for Windows build {DRIVER_STORE_MIN_BUILD} or later \
                 (decoration NT<arch>.10.0...{DRIVER_STORE_MIN_BUILD}); that is the one that installs from the \
                 driver store with DIRID 13"
            ));
        }

        let mut installs: Vec<(String, u32)> = Vec::new();
        for (name, build) in models {
            // Before build 25319 the network installer cannot run a package from the driver store, so those
            // builds get DIRID 12 (Learn: network/manufacturer-section-in-a-network-inf-file).
            let dirid = if build.is_some_and(|b| b >= DRIVER_STORE_MIN_BUILD) { 13 } else { 12 };
            let Some(section) = self.reference(&name, "[Manufacturer]") else { continue };
            if section.entries.is_empty() {
                self.problem(format!("[{name}]: the Models section lists no component"));
            }
            for model in &section.entries {
                if model
                    .key
                    .as_deref()
                    .map(|k| self.inf.expand(k))
                    .and_then(Result::ok)
                    .is_none_or(|k| k.trim().is_empty())
                {
                    self.problem(format!("[{name}] line {}: the component description is missing", model.line));
                }
                let install = model.field(0).to_owned();
                let id = model.field(1).to_owned();
                self.check_component_id(&name, model.line, &id);
                if install.is_empty() {
                    self.problem(format!("[{name}] line {}: no install section named", model.line));
                    continue;
                }
                if self.reference(&install, &format!("[{name}]")).is_some() {
                    match installs.iter().find(|(i, _)| i.eq_ignore_ascii_case(&install)) {
                        Some((_, d)) if *d != dirid => self.problem(format!(
                            "[{install}] is used by Models sections for builds before and after \
                             {DRIVER_STORE_MIN_BUILD}; they need different DIRIDs (12 and 13)"
                        )),
                        Some(_) => {}
                        None => installs.push((install, dirid)),
                    }
                }
            }
        }
        installs
    }

    /// "The hw-id should consist of a provider name followed by an underscore and a manufacturer name or the
    /// product name" (Learn: network/installation-requirements-for-network-protocols).
    fn check_component_id(&mut self, models: &str, line: usize, id: &str) {
        if id != self.expect.component_id {
            self.problem(format!(
                "[{models}] line {line}: ComponentId is `{id}`, expected `{}`",
                self.expect.component_id
            ));
        }
        let vendor_prefixed = id.split_once('_').is_some_and(|(vendor, product)| {
            !vendor.is_empty()
                && !product.is_empty()
                && vendor.bytes().all(|b| b.is_ascii_alphanumeric())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !vendor_prefixed {
            self.problem(format!("[{models}] line {line}: ComponentId `{id}` is not <vendor>_<product>"));
        } else if id.to_ascii_uppercase().starts_with("MS_") {
            self.problem(format!("[{models}] line {line}: ComponentId `{id}` uses Microsoft's MS_ prefix"));
        }
    }

    /// One DDInstall section and everything it pulls in.
    fn check_install(&mut self, install: &str, dirid: u32, copied: &mut BTreeSet<String>) {
        let inf: &'i Inf = self.inf;
        let Some(section) = inf.section(install) else { return };
        const ALLOWED: &[&str] = &[
            "Characteristics",
            "AddReg",
            "CopyFiles",
            "DelReg",
            "DelFiles",
            "BitReg",
            "Include",
            "Needs",
            "DriverVer",
        ];
        for entry in &section.entries {
            match &entry.key {
                Some(key) if ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(key)) => {}
                _ => self.problem(format!(
                    "[{install}] line {}: unexpected entry `{}` in an install section",
                    entry.line,
                    entry.display()
                )),
            }
        }

        // "Each DDInstall section in a network INF file must have a Characteristics entry"
        // (Learn: network/ddinstall-section-in-a-network-inf-file); rawlink's is 0x0.
        let mut p = Vec::new();
        if let Some((v, line)) = self.inf.single(section, "Characteristics", &mut p) {
            if parse_number(&v) != Some(0) {
                p.push(format!("[{install}] line {line}: Characteristics is `{v}`, expected 0x0"));
            }
        }
        self.problems.extend(p);

        let mut ndi = NdiValues::default();
        for name in list_values(section, "AddReg") {
            if let Some(addreg) = self.reference(&name, &format!("[{install}] AddReg")) {
                self.check_addreg(addreg, Some(&mut ndi));
            }
        }
        self.check_ndi(install, &ndi);

        let mut files_here = BTreeSet::new();
        for name in list_values(section, "CopyFiles") {
            if let Some(file) = name.strip_prefix('@') {
                self.problem(format!(
                    "[{install}]: CopyFiles = @{file} copies without a file-list section; list it in a section \
                     with a [DestinationDirs] entry of DIRID {dirid}"
                ));
                continue;
            }
            let Some(list) = self.reference(&name, &format!("[{install}] CopyFiles")) else { continue };
            self.check_destination(&name, dirid);
            for entry in &list.entries {
                let destination = entry.field(0).to_owned();
                let source = if entry.field(1).is_empty() { destination.clone() } else { entry.field(1).to_owned() };
                if destination.is_empty() {
                    self.problem(format!("[{name}] line {}: no file name", entry.line));
                    continue;
                }
                files_here.insert(destination.to_ascii_lowercase());
                copied.insert(source.to_ascii_lowercase());
            }
        }

        let services = format!("{install}.Services");
        if let Some(section) = self.reference(&services, &format!("[{install}] (its .Services section)")) {
            self.check_services(section, dirid, &files_here);
        }
        let remove = format!("{install}.Remove.Services");
        if let Some(section) = self.reference(&remove, &format!("[{install}] (its .Remove.Services section)")) {
            let deletes: Vec<&Entry> = section.entries_with_key("DelService").collect();
            if deletes.is_empty() {
                self.problem(format!("[{remove}]: no DelService entry"));
            }
            for entry in deletes {
                self.names.push((format!("[{remove}] DelService"), entry.field(0).to_owned()));
            }
        }
    }

    /// AddReg lines: `root, subkey, value-name, flags, value...` (Learn: install/inf-addreg-directive).
    fn check_addreg(&mut self, section: &Section, mut ndi: Option<&mut NdiValues>) {
        for entry in &section.entries {
            let root = entry.field(0);
            if !root.eq_ignore_ascii_case("HKR") {
                self.problem(format!(
                    "[{}] line {}: registry write outside HKR (`{}`): a driver package writes only below HKR \
                     (InfVerif; Learn: install/inf-addreg-directive)",
                    section.name,
                    entry.line,
                    entry.display()
                ));
                continue;
            }
            if entry.key.is_some() || entry.fields.len() < 3 {
                self.problem(format!(
                    "[{}] line {}: malformed AddReg line `{}`",
                    section.name,
                    entry.line,
                    entry.display()
                ));
                continue;
            }
            let flags = if entry.field(3).is_empty() { Some(0) } else { parse_number(entry.field(3)) };
            let Some(flags) = flags else {
                self.problem(format!(
                    "[{}] line {}: AddReg flags `{}` are not a number",
                    section.name,
                    entry.line,
                    entry.field(3)
                ));
                continue;
            };
            let values: Vec<String> = entry
                .fields
                .iter()
                .skip(4)
                .map(|f| self.inf.expand(&f.text).unwrap_or_else(|_| f.text.clone()))
                .collect();
            let subkey = entry.field(1).to_ascii_lowercase();
            let name = entry.field(2).to_ascii_lowercase();
            let value = RegValue { flags, values, line: entry.line, section: section.name.clone() };
            if let Some(ndi) = ndi.as_deref_mut() {
                let slot = match (subkey.as_str(), name.as_str()) {
                    ("ndi", "service") => Some(&mut ndi.service),
                    ("ndi", "coservices") => Some(&mut ndi.co_services),
                    ("ndi", "helptext") => Some(&mut ndi.help_text),
                    ("ndi\\interfaces", "upperrange") => Some(&mut ndi.upper_range),
                    ("ndi\\interfaces", "lowerrange") => Some(&mut ndi.lower_range),
                    _ => None,
                };
                if let Some(slot) = slot {
                    if slot.is_some() {
                        self.problem(format!(
                            "[{}] line {}: {subkey}\\{name} is written twice",
                            section.name, entry.line
                        ));
                    }
                    *slot = Some(value);
                }
            }
        }
    }

    /// Learn: network/adding-service-related-values-to-the-ndi-key, network/adding-a-helptext-value,
    /// network/specifying-binding-interfaces.
    fn check_ndi(&mut self, install: &str, ndi: &NdiValues) {
        let protocol = self.expect.protocol_name;
        match &ndi.service {
            None => self.problem(format!("[{install}]: no `HKR, Ndi, Service` value (the primary service)")),
            Some(v) => {
                if v.flags & FLG_ADDREG_TYPE_MASK != 0 {
                    self.problem(format!("[{}] line {}: Ndi\\Service must be REG_SZ (flags 0)", v.section, v.line));
                }
                self.names
                    .push((format!("[{}] Ndi\\Service", v.section), v.values.first().cloned().unwrap_or_default()));
            }
        }
        match &ndi.co_services {
            None => self.problem(format!(
                "[{install}]: no `HKR, Ndi, CoServices` value (required for every NetTrans component)"
            )),
            Some(v) => {
                if v.flags & FLG_ADDREG_TYPE_MASK != FLG_ADDREG_TYPE_MULTI_SZ {
                    self.problem(format!(
                        "[{}] line {}: Ndi\\CoServices must be REG_MULTI_SZ (flags 0x00010000)",
                        v.section, v.line
                    ));
                }
                if v.values.len() != 1 {
                    self.problem(format!(
                        "[{}] line {}: Ndi\\CoServices lists {:?}; rawlink installs exactly one service, `{protocol}`",
                        v.section, v.line, v.values
                    ));
                }
                for s in &v.values {
                    self.names.push((format!("[{}] Ndi\\CoServices", v.section), s.clone()));
                }
            }
        }
        match &ndi.help_text {
            Some(v) if v.values.first().is_some_and(|t| !t.trim().is_empty()) => {}
            _ => self.problem(format!("[{install}]: no `HKR, Ndi, HelpText` value (shown in the adapter properties)")),
        }
        match &ndi.upper_range {
            Some(v) if v.values.first().is_some_and(|t| t.eq_ignore_ascii_case("noupper")) => {}
            Some(v) => self.problem(format!(
                "[{}] line {}: Ndi\\Interfaces UpperRange is {:?}, expected \"noupper\"",
                v.section, v.line, v.values
            )),
            None => self.problem(format!("[{install}]: no `HKR, Ndi\\Interfaces, UpperRange` value")),
        }
        match &ndi.lower_range {
            Some(v) => {
                let ranges: Vec<String> =
                    v.values.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_ascii_lowercase()).collect();
                if !ranges.iter().any(|r| r == "ndis5") {
                    self.problem(format!(
                        "[{}] line {}: Ndi\\Interfaces LowerRange {:?} does not include ndis5 (binding to NDIS adapters)",
                        v.section, v.line, v.values
                    ));
                }
            }
            None => self.problem(format!("[{install}]: no `HKR, Ndi\\Interfaces, LowerRange` value")),
        }
    }

    /// Learn: install/inf-addservice-directive.
    fn check_services(&mut self, section: &Section, dirid: u32, files: &BTreeSet<String>) {
        let adds: Vec<&Entry> = section.entries_with_key("AddService").collect();
        if adds.len() != 1 {
            self.problem(format!("[{}]: expected one AddService entry, found {}", section.name, adds.len()));
        }
        for entry in &section.entries {
            if !entry.key_is("AddService") {
                self.problem(format!("[{}] line {}: unexpected entry `{}`", section.name, entry.line, entry.display()));
            }
        }
        for add in adds {
            let name = add.field(0).to_owned();
            self.names.push((format!("[{}] AddService", section.name), name.clone()));
            let flags = add.field(1);
            if !flags.is_empty() && parse_number(flags).is_none() {
                self.problem(format!(
                    "[{}] line {}: AddService flags `{flags}` are not a number",
                    section.name, add.line
                ));
            }
            let install = add.field(2).to_owned();
            if install.is_empty() {
                self.problem(format!(
                    "[{}] line {}: AddService names no service-install section",
                    section.name, add.line
                ));
                continue;
            }
            let Some(service) = self.reference(&install, &format!("[{}] AddService", section.name)) else {
                continue;
            };
            let mut p = Vec::new();
            let inf = self.inf;
            for (key, want, meaning) in [
                ("ServiceType", 1, "SERVICE_KERNEL_DRIVER"),
                ("StartType", 3, "SERVICE_DEMAND_START"),
                ("ErrorControl", 1, "SERVICE_ERROR_NORMAL"),
            ] {
                if let Some((v, line)) = inf.single(service, key, &mut p) {
                    if parse_number(&v) != Some(want) {
                        p.push(format!("[{install}] line {line}: {key} is `{v}`, expected {want} ({meaning})"));
                    }
                }
            }
            if let Some((v, line)) = inf.single(service, "ServiceBinary", &mut p) {
                let want = format!("%{dirid}%\\{}", self.expect.driver_binary);
                if !v.eq_ignore_ascii_case(&want) {
                    p.push(format!(
                        "[{install}] line {line}: ServiceBinary is `{v}`, expected `{want}` (DIRID {dirid}: {})",
                        if dirid == 13 { "the driver store" } else { "System32\\drivers, before build 25319" }
                    ));
                }
                if !files.contains(&self.expect.driver_binary.to_ascii_lowercase()) {
                    p.push(format!(
                        "[{install}] line {line}: {} is not copied by the install section's CopyFiles",
                        self.expect.driver_binary
                    ));
                }
            }
            const ALLOWED: &[&str] = &[
                "DisplayName",
                "Description",
                "ServiceType",
                "StartType",
                "ErrorControl",
                "ServiceBinary",
                "StartName",
                "AddReg",
                "DelReg",
                "BitReg",
                "LoadOrderGroup",
                "Dependencies",
                "Security",
            ];
            for entry in &service.entries {
                if !entry.key.as_deref().is_some_and(|k| ALLOWED.iter().any(|a| a.eq_ignore_ascii_case(k))) {
                    p.push(format!("[{install}] line {}: unexpected entry `{}`", entry.line, entry.display()));
                }
            }
            self.problems.extend(p);
            for name in list_values(service, "AddReg") {
                if let Some(addreg) = self.reference(&name, &format!("[{install}] AddReg")) {
                    self.check_addreg(addreg, None);
                }
            }
        }
    }

    /// The CopyFiles section `name` must have a [DestinationDirs] entry with `dirid`.
    fn check_destination(&mut self, name: &str, dirid: u32) {
        let Some(dirs) = self.inf.section("DestinationDirs") else {
            self.problem(format!("missing section [DestinationDirs] (needed by CopyFiles section [{name}])"));
            return;
        };
        let Some(entry) = dirs.entries_with_key(name).next() else {
            self.problem(format!(
                "[DestinationDirs]: no entry for CopyFiles section [{name}] (expected DIRID {dirid})"
            ));
            return;
        };
        if parse_number(entry.field(0)) != Some(dirid) || entry.fields.len() > 1 {
            self.problem(format!(
                "[DestinationDirs] line {}: [{name}] goes to DIRID `{}`, expected DIRID {dirid}{}",
                entry.line,
                entry.fields.iter().map(|f| f.text.as_str()).collect::<Vec<_>>().join(","),
                if dirid == 13 { " (the driver store; Learn: install/using-dirids)" } else { "" }
            ));
        }
    }

    /// Every [DestinationDirs] entry is a DIRID rawlink uses and names a real section.
    fn check_destination_dirs(&mut self) {
        self.referenced.insert("destinationdirs".to_owned());
        let inf: &'i Inf = self.inf;
        let Some(dirs) = inf.section("DestinationDirs") else { return };
        for entry in &dirs.entries {
            let key = entry.key.clone().unwrap_or_default();
            let dirid = parse_number(entry.field(0));
            if !matches!(dirid, Some(12 | 13)) {
                self.problem(format!(
                    "[DestinationDirs] line {}: `{}` uses DIRID `{}`; rawlink's files go to 13 (12 only before build {DRIVER_STORE_MIN_BUILD})",
                    entry.line,
                    key,
                    entry.field(0)
                ));
            }
            if !key.eq_ignore_ascii_case("DefaultDestDir") && self.inf.section(&key).is_none() {
                self.problem(format!("[DestinationDirs] line {}: missing section [{key}]", entry.line));
            }
        }
    }

    /// Learn: install/inf-sourcedisksnames-section, install/inf-sourcedisksfiles-section.
    fn check_source_disks(&mut self, copied: &BTreeSet<String>) {
        self.referenced.insert("sourcedisksnames".to_owned());
        self.referenced.insert("sourcedisksfiles".to_owned());
        let inf: &'i Inf = self.inf;
        let names = inf.section("SourceDisksNames");
        let files = inf.section("SourceDisksFiles");
        let disks: BTreeSet<u32> = match &names {
            Some(s) => s.entries.iter().filter_map(|e| e.key.as_deref().and_then(parse_number)).collect(),
            None => {
                self.problem("missing section [SourceDisksNames]".to_owned());
                BTreeSet::new()
            }
        };
        let Some(files) = files else {
            self.problem("missing section [SourceDisksFiles]".to_owned());
            return;
        };
        let mut listed = BTreeSet::new();
        for entry in &files.entries {
            let Some(file) = entry.key.clone() else {
                self.problem(format!(
                    "[SourceDisksFiles] line {}: `{}` has no `= diskid`",
                    entry.line,
                    entry.display()
                ));
                continue;
            };
            match parse_number(entry.field(0)) {
                Some(disk) if disks.contains(&disk) => {}
                _ => self.problem(format!(
                    "[SourceDisksFiles] line {}: {file} is on disk `{}`, which [SourceDisksNames] does not define",
                    entry.line,
                    entry.field(0)
                )),
            }
            if !copied.contains(&file.to_ascii_lowercase()) {
                self.problem(format!(
                    "[SourceDisksFiles] line {}: {file} is listed but no CopyFiles section copies it",
                    entry.line
                ));
            }
            if let Some(dir) = self.expect.package_dir {
                if !dir.join(&file).is_file() {
                    self.problem(format!(
                        "[SourceDisksFiles] line {}: {file} is missing from the package folder {}",
                        entry.line,
                        dir.display()
                    ));
                }
            }
            listed.insert(file.to_ascii_lowercase());
        }
        for file in copied {
            if !listed.contains(file) {
                self.problem(format!("{file} is copied by a CopyFiles section but not listed in [SourceDisksFiles]"));
            }
        }
    }

    /// "The Service value must match the ServiceName parameter of the AddService directive"
    /// (Learn: network/adding-service-related-values-to-the-ndi-key); CoServices, DelService and the name the
    /// driver registers with NDIS must be that same name.
    fn check_service_names(&mut self) {
        let protocol = self.expect.protocol_name;
        let mismatched: Vec<String> = self
            .names
            .iter()
            .filter(|(_, name)| name != protocol)
            .map(|(place, name)| format!("{place} = `{name}`"))
            .collect();
        if !mismatched.is_empty() {
            let all: Vec<String> = self.names.iter().map(|(place, name)| format!("{place} = `{name}`")).collect();
            self.problem(format!(
                "service name mismatch: the AddService name, Ndi\\Service, Ndi\\CoServices, DelService and the \
                 NDIS protocol name must all be `{protocol}`; differing: {}; all: {}",
                mismatched.join(", "),
                all.join(", ")
            ));
        }
    }

    /// Sections nothing refers to are typos or leftovers.
    fn check_unreferenced(&mut self) {
        for section in &self.inf.sections {
            let lower = section.name.to_ascii_lowercase();
            let well_known = lower == "strings" || lower.starts_with("strings.") || lower == "controlflags";
            if !well_known && !self.referenced.contains(&lower) {
                self.problems.push(format!("section [{}] (line {}) is never referenced", section.name, section.line));
            }
        }
    }
}

#[derive(Debug, Clone)]
struct RegValue {
    flags: u32,
    values: Vec<String>,
    line: usize,
    section: String,
}

#[derive(Debug, Default)]
struct NdiValues {
    service: Option<RegValue>,
    co_services: Option<RegValue>,
    help_text: Option<RegValue>,
    upper_range: Option<RegValue>,
    lower_range: Option<RegValue>,
}

/// Every value of every `key = a, b` entry of `section` (AddReg and CopyFiles take lists).
fn list_values(section: &Section, key: &str) -> Vec<String> {
    section
        .entries_with_key(key)
        .flat_map(|e| e.fields.iter().map(|f| f.text.clone()))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `mm/dd/yyyy,w.x.y.z` (Learn: install/inf-driverver-directive): two-digit month and day, four-digit year,
/// `/` or `-` between them, four version fields each below 65535.
pub fn check_driver_ver(value: &str) -> Result<(), String> {
    let (date, version) = value.split_once(',').ok_or("expected `mm/dd/yyyy,w.x.y.z`")?;
    let parts: Vec<&str> = date.trim().split(['/', '-']).collect();
    let [mm, dd, yyyy] = parts.as_slice() else { return Err(format!("date `{date}` is not mm/dd/yyyy")) };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(mm, 2) && digits(dd, 2) && digits(yyyy, 4)) {
        return Err(format!("date `{date}` is not mm/dd/yyyy"));
    }
    let month: u32 = mm.parse().map_err(|_| "bad month")?;
    let day: u32 = dd.parse().map_err(|_| "bad day")?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(format!("date `{date}` does not exist"));
    }
    let fields: Vec<&str> = version.trim().split('.').collect();
    if fields.len() != 4 {
        return Err(format!("version `{version}` is not w.x.y.z"));
    }
    for f in fields {
        match f.parse::<u32>() {
            Ok(v) if v < 65535 && !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(format!("version field `{f}` is not a number below 65535")),
        }
    }
    Ok(())
}
