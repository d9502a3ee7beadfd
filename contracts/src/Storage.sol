// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// Plain storage for the EVM binding's tests and SLOAD benchmarks.
contract Storage {
    mapping(uint256 => uint256) public values;

    function set(uint256 key, uint256 value) external {
        values[key] = value;
    }

    /// Sums `count` consecutive keys from `first`: one SLOAD each.
    function sum(uint256 first, uint256 count) external view returns (uint256 total) {
        for (uint256 key = first; key < first + count; ++key) {
            total += values[key];
        }
    }

    /// Wipes itself, for the destroy-and-recreate tests.
    function destroy() external {
        selfdestruct(payable(msg.sender));
    }
}
