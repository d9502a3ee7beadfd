"""Verifies an `eth_getProof` (EIP-1186) response against a state root with py-trie's
`HexaryTrie.get_from_proof`, an implementation that shares no code with this project.

Usage: python eip1186_verify.py STATE_ROOT_HEX < response.json

The account proof must show, under keccak256(address), the RLP of [nonce, balance, storageHash,
codeHash] (or absence when the account does not exist: nonce 0, balance 0, the empty code hash
and the empty storage root); each storage proof must show rlp(value) under keccak256(key) in the
storage trie of storageHash (or absence when value is 0). Prints one line per checked path and
exits 1 on the first failure.
"""

import json
import sys

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie

EMPTY_CODE = keccak(b"")
EMPTY_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")


def unhex(text: str) -> bytes:
    digits = text.removeprefix("0x")
    return bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)


def quantity(text: str) -> int:
    return int(text, 16)


def main() -> int:
    root = unhex(sys.argv[1])
    response = json.load(sys.stdin)
    address = unhex(response["address"])
    nonce, balance = quantity(response["nonce"]), quantity(response["balance"])
    code_hash, storage_hash = unhex(response["codeHash"]), unhex(response["storageHash"])
    account_proof = [rlp.decode(unhex(node)) for node in response["accountProof"]]
    found = HexaryTrie.get_from_proof(root, keccak(address), account_proof)
    absent = nonce == 0 and balance == 0 and code_hash == EMPTY_CODE and storage_hash == EMPTY_ROOT
    expected = b"" if (absent and found == b"") else rlp.encode([nonce, balance, storage_hash, code_hash])
    if found != expected:
        print(f"account {response['address']}: proof shows {found.hex()}, expected {expected.hex()}", file=sys.stderr)
        return 1
    print(f"account {response['address']}: {'absent' if found == b'' else 'present'}, verified")
    for slot in response["storageProof"]:
        key = unhex(slot["key"]).rjust(32, b"\0")
        value = quantity(slot["value"])
        proof = [rlp.decode(unhex(node)) for node in slot["proof"]]
        found = HexaryTrie.get_from_proof(storage_hash, keccak(key), proof)
        expected = b"" if value == 0 else rlp.encode(value)
        if found != expected:
            print(f"slot {slot['key']}: proof shows {found.hex()}, expected {expected.hex()}", file=sys.stderr)
            return 1
        print(f"slot {slot['key']}: {value:#x}, verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
