// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IXState, XSTATE} from "./IXState.sol";

/// Reads balances of the example WASM token (guest/token) through the precompile. The token keeps
/// the balance of `holder` in u64 slot uint64(bytes8(keccak256(holder))).
contract WasmReader {
    uint64 public lastBalance;

    event BalanceRead(address indexed module, address indexed holder, uint64 balance);

    function balanceSlot(address holder) public pure returns (uint64) {
        return uint64(bytes8(keccak256(abi.encodePacked(holder))));
    }

    /// Reads and records a holder's balance in the module at `module`.
    function readTokenBalance(address module, address holder) external returns (uint64 balance) {
        balance = XSTATE.readU64(module, balanceSlot(holder));
        lastBalance = balance;
        emit BalanceRead(module, holder, balance);
    }

    /// Reads a holder's balance in module (`name`, `version`), deriving its identity on chain.
    function balanceByName(string calldata name, uint32 version, address holder) external view returns (uint64) {
        return XSTATE.readU64(XSTATE.moduleAddress(name, version), balanceSlot(holder));
    }
}
