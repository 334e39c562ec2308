//! `convene import-csv`: arbitrary bytes as a spreadsheet of each kind,
//! into a fresh copy of a node. Reading must never panic; rows it accepts
//! must publish and read back. The checks are
//! [`convene_fuzz::CsvHome::run`].

#![no_main]

use convene_fuzz::CsvHome;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static HOME: CsvHome = CsvHome::new();
}

fuzz_target!(|data: &[u8]| HOME.with(|home| home.run(data)));
