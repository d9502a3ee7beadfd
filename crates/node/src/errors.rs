//! The node's JSON-RPC errors, with the codes Ethereum clients match on: -32000 for what geth
//! reports as a server error (its rejection wording included), -32602 for invalid parameters,
//! and 3 for a call that reverted, with the revert data.

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;
use xstate_chain::RuntimeError;

/// geth's code for a server-side error (a rejected transaction, an unknown block).
pub(crate) const SERVER_ERROR: i32 = -32000;
/// JSON-RPC's invalid-parameters code.
pub(crate) const INVALID_PARAMS: i32 = -32602;
/// The code of a reverted call (geth, EIP-1474's execution error).
pub(crate) const EXECUTION_REVERTED: i32 = 3;
/// JSON-RPC's internal-error code, for a failure of the node's own store.
pub(crate) const INTERNAL_ERROR: i32 = -32603;

/// A server error with `message`.
pub(crate) fn server(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, message.into(), None::<()>)
}

/// An invalid-parameters error with `message`.
pub(crate) fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), None::<()>)
}

/// A reverted call: geth's message, with the decoded reason when the data is `Error(string)`,
/// and the raw revert data.
pub(crate) fn reverted(data: &Bytes) -> ErrorObjectOwned {
    let message = match alloy_sol_types_reason(data) {
        Some(reason) => format!("execution reverted: {reason}"),
        None => "execution reverted".to_owned(),
    };
    ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(data.to_string()))
}

/// The reason of an `Error(string)` revert (selector 0x08c379a0, then an ABI string).
fn alloy_sol_types_reason(data: &[u8]) -> Option<String> {
    let body = data.strip_prefix(&[0x08, 0xc3, 0x79, 0xa0])?;
    let offset = usize::try_from(alloy_primitives::U256::from_be_slice(body.get(..32)?)).ok()?;
    let length_word = body.get(offset..offset.checked_add(32)?)?;
    let length = usize::try_from(alloy_primitives::U256::from_be_slice(length_word)).ok()?;
    let start = offset + 32;
    let text = body.get(start..start.checked_add(length)?)?;
    String::from_utf8(text.to_vec()).ok()
}

/// A runtime failure: a block that does not exist is the caller's (geth's "header not found"), and
/// so is a block whose state is no longer retained; anything else is the node's.
pub(crate) fn runtime(error: RuntimeError) -> ErrorObjectOwned {
    match error {
        RuntimeError::UnknownBlock { .. } => server("header not found"),
        // A block whose state the store no longer keeps is the caller's to ask for a later one.
        RuntimeError::Store(error @ kv_core::StoreError::HeightNotRetained { .. }) => {
            server(format!("the state of that block is no longer kept: {error}"))
        }
        other => ErrorObjectOwned::owned(INTERNAL_ERROR, other.to_string(), None::<()>),
    }
}
