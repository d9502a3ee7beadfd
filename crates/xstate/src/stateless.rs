//! The `witness` and `verify-block` commands: a block's witness written from a store, and a
//! block verified from its witness alone.
//!
//! `xstate witness N --db DIR --out FILE` writes two JSON files: FILE, the witness in reth's
//! `ExecutionWitness` shape, and the block (chain id, RLP header, EIP-2718 transactions) beside
//! it, FILE with `.block.json` appended unless `--block-out` names another. `xstate verify-block
//! BLOCK WITNESS` reads them back and needs no store. Both formats are in `docs/spec/witness.md`.

use serde_json::json;
use std::path::{Path, PathBuf};
use xstate_chain::{BlockWitness, Runtime, StatelessBlock, verify_block};

fn write(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    std::fs::write(path, format!("{value}\n")).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// The default block file beside witness file `out`.
fn block_file_beside(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".block.json");
    PathBuf::from(name)
}

pub(crate) fn witness_command(
    runtime: &Runtime,
    number: u64,
    out: &Path,
    block_out: Option<PathBuf>,
    json: bool,
) -> Result<(), String> {
    let (block, witness) =
        runtime.witness(number).map_err(|error| format!("cannot witness block {number}: {error}"))?;
    let block_out = block_out.unwrap_or_else(|| block_file_beside(out));
    write(out, &witness.to_json())?;
    write(&block_out, &block.to_json())?;
    let bytes = witness.byte_len();
    if json {
        let report = json!({
            "block": number,
            "witness": out.display().to_string(),
            "blockFile": block_out.display().to_string(),
            "nodes": witness.state.len(),
            "codes": witness.codes.len(),
            "keys": witness.keys.len(),
            "headers": witness.headers.len(),
            "bytes": bytes,
        });
        println!("{report}");
    } else {
        println!(
            "block {number}: witness {} ({} nodes, {} codes, {} keys, {} headers, {bytes} bytes), block {}",
            out.display(),
            witness.state.len(),
            witness.codes.len(),
            witness.keys.len(),
            witness.headers.len(),
            block_out.display()
        );
    }
    Ok(())
}

pub(crate) fn verify_block_command(block: &Path, witness: &Path, json: bool) -> Result<(), String> {
    let block = StatelessBlock::from_json(&read(block)?).map_err(|error| format!("{}: {error}", block.display()))?;
    let witness =
        BlockWitness::from_json(&read(witness)?).map_err(|error| format!("{}: {error}", witness.display()))?;
    let verified = verify_block(&block, &witness)
        .map_err(|error| format!("block {} does not verify: {error}", block.header.number))?;
    if json {
        let report = json!({
            "verified": true,
            "block": verified.number,
            "hash": verified.hash.to_string(),
            "stateRoot": verified.state_root.to_string(),
            "receiptsRoot": verified.receipts_root.to_string(),
            "gasUsed": verified.gas_used,
            "transactions": verified.transactions,
        });
        println!("{report}");
    } else {
        println!(
            "block {} ({}) verified from its witness: {} transactions, gas used {}, state root {}, receipts root {}",
            verified.number,
            verified.hash,
            verified.transactions,
            verified.gas_used,
            verified.state_root,
            verified.receipts_root
        );
    }
    Ok(())
}
