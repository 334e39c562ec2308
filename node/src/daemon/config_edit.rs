//! `convene config show | set | unset`: reading and editing `config.toml`
//! for operators.
//!
//! The loader in [`super::config`] stays the one judge of what is valid:
//! an edit is made on the file's text with `toml_edit` (so comments and
//! layout survive), the result is parsed with [`Config::parse`], and only
//! if that succeeds is it written, atomically (a temporary file beside it,
//! then a rename). The keys `set` knows, and their types, come from the
//! defaults rendered by [`Config::to_toml`], so a key added to the loader
//! (and to `to_toml`) is known here without a second list.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Value};

use super::config::{CONFIG_FILE, Config, ConfigError};

/// A refused or failed edit. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    #[error("unknown config key {key:?}{}; known keys: {known}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownKey {
        key: String,
        suggestion: Option<String>,
        known: String,
    },
    #[error("cannot set {key}: {message}; nothing was changed")]
    BadValue { key: String, message: String },
    #[error("{path} is not valid TOML ({message}): fix it by hand first; nothing was changed")]
    NotToml { path: String, message: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What `config show` prints.
#[derive(Debug, Clone)]
pub struct Shown {
    pub path: PathBuf,
    /// Whether the file exists (if not, everything is a default).
    pub exists: bool,
    pub config: Config,
}

/// The effective configuration of `home`: the file over the defaults.
pub fn show(home: &Path) -> Result<Shown, ConfigEditError> {
    let path = home.join(CONFIG_FILE);
    Ok(Shown {
        exists: path.is_file(),
        config: Config::load(home)?,
        path,
    })
}

/// The dotted keys the configuration has, with their default values.
fn known_keys() -> Vec<(String, Item)> {
    fn walk(prefix: &str, table: &dyn toml_edit::TableLike, out: &mut Vec<(String, Item)>) {
        for (k, item) in table.iter() {
            let key = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            match item.as_table_like() {
                Some(t) => walk(&key, t, out),
                None => out.push((key, item.clone())),
            }
        }
    }
    let defaults: DocumentMut = Config::default()
        .to_toml()
        .parse()
        .expect("the defaults are valid TOML");
    let mut out = Vec::new();
    walk("", defaults.as_table(), &mut out);
    out
}

fn unknown_key(key: &str) -> ConfigEditError {
    let keys: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
    let suggestion = keys
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone());
    ConfigEditError::UnknownKey {
        key: key.to_string(),
        suggestion,
        known: keys.join(", "),
    }
}

fn parts(key: &str) -> Result<Vec<&str>, ConfigEditError> {
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(unknown_key(key));
    }
    Ok(parts)
}

/// A value typed as given: TOML if it reads as a TOML value, else a string.
fn literal(s: &str) -> Value {
    s.trim()
        .parse::<Value>()
        .unwrap_or_else(|_| Value::from(s.trim()))
}

/// Turns the command line's values into the TOML value for `key`, guided
/// by the type of its default.
fn typed_value(key: &str, values: &[String]) -> Result<Value, ConfigEditError> {
    let bad = |message: String| ConfigEditError::BadValue {
        key: key.to_string(),
        message,
    };
    let default = known_keys()
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, item)| item.as_value().cloned());
    let one = || match values {
        [v] => Ok(v.as_str()),
        _ => Err(bad(format!("it takes one value, not {}", values.len()))),
    };
    Ok(match default {
        Some(Value::Array(_)) => {
            if let [v] = values
                && v.trim_start().starts_with('[')
            {
                match literal(v) {
                    Value::Array(a) => Value::Array(a),
                    _ => return Err(bad(format!("{v:?} is not a TOML list"))),
                }
            } else {
                Value::Array(values.iter().map(|v| v.trim()).collect())
            }
        }
        Some(Value::Boolean(_)) => match one()?.trim().to_lowercase().as_str() {
            "true" | "yes" | "on" => Value::from(true),
            "false" | "no" | "off" => Value::from(false),
            other => return Err(bad(format!("it takes true or false, not {other:?}"))),
        },
        Some(Value::Integer(_)) => {
            let v = one()?;
            Value::from(
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("it takes a whole number, not {v:?}")))?,
            )
        }
        Some(Value::String(_)) => match literal(one()?) {
            Value::String(s) => Value::String(s),
            _ => Value::from(one()?.trim()),
        },
        // A key the defaults do not show: the loader decides below.
        _ => match values {
            [v] => literal(v),
            _ => Value::Array(values.iter().map(|v| v.trim()).collect()),
        },
    })
}

fn read_doc(path: &Path) -> Result<(DocumentMut, Option<std::fs::Permissions>), ConfigEditError> {
    let shown = path.display().to_string();
    let (text, perms) = match std::fs::read_to_string(path) {
        Ok(t) => (t, std::fs::metadata(path).ok().map(|m| m.permissions())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(source) => {
            return Err(ConfigEditError::Read {
                path: shown,
                source,
            });
        }
    };
    let doc = text
        .parse::<DocumentMut>()
        .map_err(|e| ConfigEditError::NotToml {
            path: shown,
            message: e.message().trim().to_string(),
        })?;
    Ok((doc, perms))
}

/// Checks the edited text with the daemon's loader, then writes it.
fn validate_and_write(
    home: &Path,
    key: &str,
    doc: &DocumentMut,
    perms: Option<std::fs::Permissions>,
) -> Result<Config, ConfigEditError> {
    let path = home.join(CONFIG_FILE);
    let text = doc.to_string();
    let config = Config::parse(&text, &path.display().to_string()).map_err(|e| match e {
        ConfigError::Invalid { message, .. } if message.contains("unknown field") => {
            unknown_key(key)
        }
        ConfigError::Invalid { message, .. } => ConfigEditError::BadValue {
            key: key.to_string(),
            message,
        },
        other => other.into(),
    })?;
    write_atomically(&path, text.as_bytes(), perms)?;
    Ok(config)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`, so a crash or a full disk never leaves half a
/// file under the real name.
fn write_atomically(
    path: &Path,
    bytes: &[u8],
    perms: Option<std::fs::Permissions>,
) -> Result<(), ConfigEditError> {
    use std::io::Write;
    let err = |source| ConfigEditError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::node::create_home(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    let written = (|| {
        // A new file is private; an existing one keeps its mode, except
        // that no one else may write it (it names the peers to trust).
        let mut file = crate::node::create_private_file(&tmp)?;
        file.write_all(bytes)?;
        if let Some(p) = perms {
            #[cfg(unix)]
            let p = {
                use std::os::unix::fs::PermissionsExt;
                std::fs::Permissions::from_mode(p.mode() & 0o755)
            };
            file.set_permissions(p)?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every platform
        // can open a directory).
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// Sets `key` (dotted, e.g. `bootstrap` or `web.listen`) to `values` in
/// `home`'s `config.toml`, keeping the rest of the file as it was.
/// Returns the configuration as the daemon will now read it.
pub fn set(home: &Path, key: &str, values: &[String]) -> Result<Config, ConfigEditError> {
    let path = home.join(CONFIG_FILE);
    let parts = parts(key)?;
    let key = parts.join(".");
    let mut value = typed_value(&key, values)?;
    let (mut doc, perms) = read_doc(&path)?;
    let (last, tables) = parts.split_last().expect("a key has a part");
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for part in tables {
        let item = table.entry(part).or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = item.as_table_like_mut().ok_or_else(|| unknown_key(&key))?;
    }
    // Replaced in place, so the key keeps the comment above it and the
    // value the comment after it.
    match table.get_mut(last) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            table.insert(last, Item::Value(value));
        }
    }
    validate_and_write(home, &key, &doc, perms)
}

/// Removes `key` from `config.toml`, so its default applies again.
/// Returns whether the file had it.
pub fn unset(home: &Path, key: &str) -> Result<bool, ConfigEditError> {
    let path = home.join(CONFIG_FILE);
    let parts = parts(key)?;
    let key = parts.join(".");
    if !known_keys().iter().any(|(k, _)| *k == key) {
        // Only a key the loader accepts may be named; one it does not know
        // (say, a typo) gets the same suggestion as `set`.
        let (doc, _) = read_doc(&path)?;
        if get(&doc, &parts).is_none() {
            return Err(unknown_key(&key));
        }
    }
    if !path.exists() {
        return Ok(false);
    }
    let (mut doc, perms) = read_doc(&path)?;
    let (last, tables) = parts.split_last().expect("a key has a part");
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for part in tables {
        match table.get_mut(part).and_then(Item::as_table_like_mut) {
            Some(t) => table = t,
            None => return Ok(false),
        }
    }
    if table.remove(last).is_none() {
        return Ok(false);
    }
    validate_and_write(home, &key, &doc, perms)?;
    Ok(true)
}

fn get<'a>(doc: &'a DocumentMut, parts: &[&str]) -> Option<&'a Item> {
    let mut item = doc.as_item();
    for p in parts {
        item = item.as_table_like()?.get(p)?;
    }
    Some(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMENTED: &str = "# Our trust's server.\nbootstrap = [] # filled in later\n\n# Quiet on the LAN.\nmdns = false\n";

    #[test]
    fn set_keeps_comments_and_the_loader_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, COMMENTED).unwrap();
        let addr = "/ip4/192.0.2.10/tcp/4040".to_string();
        let config = set(dir.path(), "bootstrap", std::slice::from_ref(&addr)).unwrap();
        assert_eq!(config.bootstrap[0].to_string(), addr);
        assert!(!config.mdns);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# Our trust's server."), "{text}");
        assert!(text.contains("# filled in later"), "{text}");
        assert!(text.contains("# Quiet on the LAN."), "{text}");
        assert_eq!(Config::load(dir.path()).unwrap(), config);

        set(dir.path(), "mdns", &["true".into()]).unwrap();
        assert!(Config::load(dir.path()).unwrap().mdns);
        assert!(unset(dir.path(), "bootstrap").unwrap());
        assert!(!unset(dir.path(), "bootstrap").unwrap());
        assert!(Config::load(dir.path()).unwrap().bootstrap.is_empty());
    }

    #[test]
    fn bad_keys_and_values_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, COMMENTED).unwrap();
        let err = set(dir.path(), "listn", &["/ip4/0.0.0.0/tcp/1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean \"listen\"?"), "{err}");
        let err = set(dir.path(), "bootstrap", &["not an address".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a multiaddress"), "{err}");
        let err = set(dir.path(), "mdns", &["maybe".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("true or false"), "{err}");
        let err = set(dir.path(), "peers.max", &["x".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown config key"), "{err}");
        assert!(unset(dir.path(), "nope").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), COMMENTED);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn set_creates_the_file_and_lists_take_toml_too() {
        let dir = tempfile::tempdir().unwrap();
        set(
            dir.path(),
            "listen",
            &["/ip4/127.0.0.1/tcp/5000".into(), "/ip6/::1/tcp/5000".into()],
        )
        .unwrap();
        assert_eq!(Config::load(dir.path()).unwrap().listen.len(), 2);
        set(dir.path(), "bootstrap", &["[]".into()]).unwrap();
        assert!(Config::load(dir.path()).unwrap().bootstrap.is_empty());
    }
}
