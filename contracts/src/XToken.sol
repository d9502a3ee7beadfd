// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// An OpenZeppelin ERC-20 whose owner may mint. ERC20's state comes first in the layout, so
/// `_balances` is storage slot 0 and a balance lives at keccak256(pad32(holder) . pad32(0)).
contract XToken is ERC20, Ownable {
    constructor(address initialOwner) ERC20("Cross Token", "XT") Ownable(initialOwner) {}

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
