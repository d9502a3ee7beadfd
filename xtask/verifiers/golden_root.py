"""Recomputes the golden root of docs/spec/abi/state.md section 5.4 from the spec's words alone,
with the Python `trie` package (py-trie's HexaryTrie), which shares no code with this project.

The account trie holds, for the EVM contract, key keccak256(address) and Ethereum's account leaf;
for each WASM module, key keccak256(0x01 | identity) and a leaf of the same shape whose code hash
is the module record's (the empty code hash without one). Storage tries hold keccak256(slot) ->
rlp(word without leading zeros) for the EVM and keccak256(engine key) -> rlp(value) for WASM, the
engine key being the key after the 21-byte prefix. Code blobs are not in the trie.

Usage: python golden_root.py EXPECTED_ROOT_HEX. Exits 1 when the roots differ.
"""

import sys

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie

EMPTY_CODE = keccak(b"")


def module_identity(chain_id: int, name: bytes, version: int) -> bytes:
    preimage = chain_id.to_bytes(8, "big") + len(name).to_bytes(2, "big") + name + version.to_bytes(4, "big")
    return keccak(preimage)[:20]


def storage_root(leaves: dict) -> bytes:
    t = HexaryTrie({})
    for key, value in leaves.items():
        t[key] = value
    return t.root_hash


def main() -> int:
    expected = bytes.fromhex(sys.argv[1].removeprefix("0x"))
    counter = module_identity(1, b"counter", 1)
    token = module_identity(1, b"token", 1)
    contract = bytes.fromhex("00000000000000000000000000000000000000aa")
    code = bytes([0x60, 0x00])
    module_code_hash = keccak(b"\0asm")
    token_record = bytes([0x01]) + module_code_hash + (1).to_bytes(4, "big") + bytes([5]) + b"token"

    def wasm_slot(slot: int) -> bytes:
        return bytes([0x01]) + slot.to_bytes(8, "big")

    accounts = HexaryTrie({})
    counter_storage = {keccak(wasm_slot(0)): rlp.encode((42).to_bytes(8, "big"))}
    accounts[keccak(bytes([0x01]) + counter)] = rlp.encode([0, 0, storage_root(counter_storage), EMPTY_CODE])
    token_storage = {
        keccak(bytes([0x00])): rlp.encode(token_record),
        keccak(wasm_slot(1)): rlp.encode((1000).to_bytes(8, "big")),
        keccak(wasm_slot(2)): rlp.encode((7).to_bytes(8, "big")),
    }
    accounts[keccak(bytes([0x01]) + token)] = rlp.encode([0, 0, storage_root(token_storage), module_code_hash])
    contract_storage = {
        keccak((0).to_bytes(32, "big")): rlp.encode(5),
        keccak((1).to_bytes(32, "big")): rlp.encode(9),
    }
    accounts[keccak(contract)] = rlp.encode([1, 1000, storage_root(contract_storage), keccak(code)])

    print("0x" + accounts.root_hash.hex())
    for label, leaves in [("counter", counter_storage), ("token", token_storage), ("contract", contract_storage)]:
        print(f"{label} storage root 0x{storage_root(leaves).hex()}")
    if accounts.root_hash != expected:
        print(f"MISMATCH: expected 0x{expected.hex()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
