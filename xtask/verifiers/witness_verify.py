"""Checks a block witness (docs/spec/witness.md) with py-trie, an implementation no one here wrote.

Usage: witness_verify.py WITNESS.json BLOCK.json

Checks, against the parent state root named by the witness's last header:
  * every `state` node is reached by hash from the parent state root, through the account trie and
    the storage tries its account leaves name (so no node was added, altered or taken from another
    state), and none is listed twice;
  * every key of `keys` has its account-trie path in the witness (py-trie proves the account
    present or absent without a missing node), and every storage key whose storage trie was read
    (its root node is listed) has its storage path too;
  * every `codes` blob is named by the code hash of an account leaf reached, none twice;
  * the headers form a chain of parents, and the last is the block's parent.
Prints a JSON summary; exits 1 with the reason on the first failure.
"""

import json
import sys

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.constants import BLANK_NODE_HASH
from trie.exceptions import MissingTraversalNode, MissingTrieNode


def fail(reason):
    print(f"witness rejected: {reason}", file=sys.stderr)
    sys.exit(1)


def hex_bytes(text):
    if not text.startswith("0x"):
        fail(f"not 0x-prefixed hex: {text[:20]}")
    return bytes.fromhex(text[2:])


class RecordingDb(dict):
    """The witness's nodes by hash, remembering which ones the walk read."""

    def __init__(self, nodes):
        super().__init__(nodes)
        self.read = set()

    def __getitem__(self, key):
        value = super().__getitem__(key)
        self.read.add(key)
        return value


def walk(db, root):
    """Every leaf value reachable from `root` through nodes the witness holds."""
    if root == BLANK_NODE_HASH or root not in db:
        return []
    trie = HexaryTrie(db, root_hash=root)
    leaves = []
    stack = [trie.root_node]
    while stack:
        node = stack.pop()
        if node.value:
            leaves.append(node.value)
        for segment in node.sub_segments:
            try:
                stack.append(trie.traverse_from(node, segment))
            except MissingTraversalNode:
                # A child the block never needed: referred to by hash, not listed.
                pass
    return leaves


def main():
    if len(sys.argv) != 3:
        fail("usage: witness_verify.py WITNESS.json BLOCK.json")
    with open(sys.argv[1]) as file:
        witness = json.load(file)
    with open(sys.argv[2]) as file:
        block = json.load(file)

    nodes = [hex_bytes(entry) for entry in witness["state"]]
    codes = [hex_bytes(entry) for entry in witness["codes"]]
    keys = [hex_bytes(entry) for entry in witness["keys"]]
    headers = [rlp.decode(hex_bytes(entry)) for entry in witness["headers"]]
    header = rlp.decode(hex_bytes(block["header"]))

    # Headers: a chain of parents ending at the block's parent (parentHash is field 0, stateRoot
    # field 3 of an Ethereum header).
    if not headers:
        fail("no headers")
    for older, newer in zip(witness["headers"], headers[1:]):
        if keccak(hex_bytes(older)) != newer[0]:
            fail("headers are not a chain of parents")
    if keccak(hex_bytes(witness["headers"][-1])) != header[0]:
        fail("the last header is not the block's parent")
    parent_root = headers[-1][3]

    by_hash = {}
    for node in nodes:
        digest = keccak(node)
        if digest in by_hash:
            fail(f"state node 0x{digest.hex()} is listed twice")
        by_hash[digest] = node
    db = RecordingDb(by_hash)

    # Walk the account trie and every storage trie its leaves name.
    code_hashes = set()
    accounts = walk(db, parent_root)
    storage_leaves = 0
    for value in accounts:
        nonce, balance, storage_root, code_hash = rlp.decode(value)
        code_hashes.add(code_hash)
        storage_leaves += len(walk(db, storage_root))
    unreached = set(by_hash) - db.read
    if unreached:
        fail(f"{len(unreached)} state nodes are not reached from the parent root, e.g. 0x{min(unreached).hex()}")

    seen_codes = set()
    for code in codes:
        digest = keccak(code)
        if digest in seen_codes:
            fail(f"code 0x{digest.hex()} is listed twice")
        seen_codes.add(digest)
        if digest not in code_hashes:
            fail(f"code 0x{digest.hex()} is named by no account leaf of the witness")

    # Every key's path: the account (or module) leaf, then the storage entry where its trie was read.
    account_trie = HexaryTrie(db, root_hash=parent_root)
    storage_lookups = 0
    for key in keys:
        engine = key[0]
        if engine == 0x02:  # EVM: 0x02 | address | 0x00, or 0x02 | address | 0x01 | slot
            preimage, rest = key[1:21], key[21:]
            storage_key = rest[1:] if rest[:1] == b"\x01" else None
        elif engine == 0x01:  # WASM: 0x01 | identity | engine key
            preimage, storage_key = key[:21], key[21:]
        else:
            fail(f"key 0x{key.hex()} has no engine this spec knows")
        try:
            leaf = account_trie.get(keccak(preimage))
        except MissingTrieNode:
            fail(f"the account path of key 0x{key.hex()} is not in the witness")
        if storage_key is None or not leaf:
            continue
        storage_root = rlp.decode(leaf)[2]
        if storage_root == BLANK_NODE_HASH or storage_root not in by_hash:
            # An empty storage trie, or one the block wiped or never read from the parent.
            continue
        try:
            HexaryTrie(db, root_hash=storage_root).get(keccak(storage_key))
        except MissingTrieNode:
            fail(f"the storage path of key 0x{key.hex()} is not in the witness")
        storage_lookups += 1

    print(json.dumps({
        "verified": True,
        "parentStateRoot": "0x" + parent_root.hex(),
        "nodes": len(nodes),
        "accountLeaves": len(accounts),
        "storageLeaves": storage_leaves,
        "keys": len(keys),
        "storageLookups": storage_lookups,
        "codes": len(codes),
        "headers": len(headers),
    }))


main()
