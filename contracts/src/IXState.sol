// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// The cross-engine read precompile at 0x0000000000000000000000000000000000000a00.
interface IXState {
    /// The u64 slot `slot` of the WASM module whose synthetic identity is `module` (0 when the
    /// slot or the module does not exist).
    function readU64(address module, uint64 slot) external view returns (uint64);

    /// The synthetic identity of WASM module (`name`, `version`) on this chain.
    function moduleAddress(string calldata name, uint32 version) external view returns (address);
}

IXState constant XSTATE = IXState(address(0xa00));
