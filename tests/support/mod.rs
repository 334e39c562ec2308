//! Helpers shared by the workspace's integration tests: a temporary home
//! and the real `convene` binary run in it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// A temporary `CONVENE_HOME`, removed when dropped.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A home initialised for an NHS trust.
    pub fn initialised() -> Self {
        let home = Self::new();
        home.convene(&[
            "init",
            "--org",
            "Gateshead Health NHS Foundation Trust",
            "--sector",
            "nhs-trust",
            "--place",
            "Gateshead",
        ])
        .assert()
        .success();
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `convene --home HOME ARGS…`, ready to run.
    pub fn convene(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("convene").expect("the convene binary is built");
        cmd.env_remove("CONVENE_HOME")
            .env_remove("RUST_LOG")
            .arg("--home")
            .arg(self.path())
            .args(args);
        cmd
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn stdout(&self, args: &[&str]) -> String {
        let out = self.convene(args).output().expect("convene runs");
        assert!(
            out.status.success(),
            "convene {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.stdout(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {out}"))
    }

    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        self.stdout(args)
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{args:?}: bad JSON line ({e}): {l}"))
            })
            .collect()
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    /// The database file's bytes (every command closes its connection,
    /// which checkpoints the WAL into the file).
    pub fn db_bytes(&self) -> Vec<u8> {
        std::fs::read(self.path().join("convene.db")).expect("database file")
    }

    pub fn db_bytes_after_checkpoint(&self) -> Vec<u8> {
        assert!(
            !self.path().join("convene.db-wal").exists()
                || std::fs::metadata(self.path().join("convene.db-wal"))
                    .unwrap()
                    .len()
                    == 0,
            "the WAL is checkpointed when the last connection closes"
        );
        self.db_bytes()
    }
}
