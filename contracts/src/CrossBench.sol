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

    function sloadLoop(uint256 count) external view returns (uint256 total) {
        for (uint256 i = 0; i < count; ++i) {
            total += stored;
        }
    }
}
