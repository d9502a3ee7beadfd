// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {XSTATE} from "./IXState.sol";

/// Loops for the cross-read benchmark: `count` precompile reads of a WASM slot against `count`
/// warm SLOADs of this contract's own slot.
contract CrossBench {
    uint256 public stored = 1;

    function readLoop(address module, uint64 slot, uint256 count) external view returns (uint256 total) {
        for (uint256 i = 0; i < count; ++i) {
            total += XSTATE.readU64(module, slot);
        }
    }

    /// The floor of any precompile read: `count` STATICCALLs of the identity precompile (0x04)
    /// with the same 68-byte calldata as `readLoop`.
    function identityLoop(address module, uint64 slot, uint256 count) external view returns (uint256 total) {
        bytes memory input = abi.encodeCall(XSTATE.readU64, (module, slot));
        for (uint256 i = 0; i < count; ++i) {
            (bool ok, bytes memory output) = address(4).staticcall(input);
            if (ok) total += output.length;
        }
    }

    /// One readU64 through STATICCALL with only `gasLimit` gas: too little makes the inner call
    /// fail while this call goes on.
    function readWithGas(address module, uint64 slot, uint256 gasLimit) external view returns (bool ok, uint256 value) {
        bytes memory output;
        (ok, output) = address(XSTATE).staticcall{gas: gasLimit}(abi.encodeCall(XSTATE.readU64, (module, slot)));
        if (ok) value = abi.decode(output, (uint64));
    }

    function sloadLoop(uint256 count) external view returns (uint256 total) {
        for (uint256 i = 0; i < count; ++i) {
            total += stored;
        }
    }
}
