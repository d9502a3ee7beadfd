"""The web3.py end-to-end test of `xstate node`, run by crates/xstate/tests/clients.rs against a
node it started on loopback.

Usage: python web3_e2e.py before|after URL REPO STATE_FILE

`before` deploys the OpenZeppelin ERC-20 from its committed artifact, mints and transfers, reads
the Transfer event with eth_getLogs, calls views, checks balances, nonces and the fee paid, deploys
the WASM token through 0x...0a01 and calls it from the same wallet, has WasmReader read that
balance through the precompile, and verifies eth_getProof of the ERC-20's balance slot against the
block's stateRoot with py-trie (which shares no code with this project); it writes what it saw to
STATE_FILE. `after`, once the node restarted, finds all of it again. Any failed check raises.
"""

import json
import sys
from pathlib import Path

import rlp
from eth_abi import encode
from eth_account import Account
from eth_hash.auto import keccak
from trie import HexaryTrie
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

DEPLOYER = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
ALICE = Account.from_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
BOB = Web3.to_checksum_address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
WASM_DEPLOY = Web3.to_checksum_address("0x0000000000000000000000000000000000000a01")


def artifact(repo: Path, name: str) -> dict:
    return json.loads((repo / "contracts" / "artifacts" / f"{name}.json").read_text())


def send(w3: Web3, account, transaction: dict) -> dict:
    """Fills in nonce, gas and fees as a wallet does, signs, sends and waits for the receipt."""
    transaction = {
        "from": account.address,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        **transaction,
    }
    transaction.setdefault("gas", w3.eth.estimate_gas(transaction))
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    tip = w3.eth.max_priority_fee
    transaction.setdefault("maxPriorityFeePerGas", tip)
    transaction.setdefault("maxFeePerGas", 2 * base_fee + tip)
    signed = account.sign_transaction(transaction)
    hash_ = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(hash_, timeout=30, poll_latency=0.05)
    assert receipt["status"] == 1, receipt
    return receipt


def balance_slot(holder: str) -> bytes:
    """The storage slot of `holder`'s balance in an OpenZeppelin 5 ERC-20 (`_balances` is slot 0)."""
    return keccak(encode(["address", "uint256"], [holder, 0]))


def verify_proof(proof, state_root: bytes) -> list:
    """Checks an eth_getProof answer against `state_root` with py-trie; returns the slot values."""
    account_proof = [rlp.decode(bytes(node)) for node in proof["accountProof"]]
    found = HexaryTrie.get_from_proof(state_root, keccak(bytes.fromhex(proof["address"][2:])), account_proof)
    expected = rlp.encode([proof["nonce"], proof["balance"], bytes(proof["storageHash"]), bytes(proof["codeHash"])])
    assert found == expected, f"the account proof shows {found.hex()}, expected {expected.hex()}"
    values = []
    for slot in proof["storageProof"]:
        key = bytes(slot["key"]).rjust(32, b"\0")
        nodes = [rlp.decode(bytes(node)) for node in slot["proof"]]
        found = HexaryTrie.get_from_proof(bytes(proof["storageHash"]), keccak(key), nodes)
        value = slot["value"]
        value = int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)
        assert found == (b"" if value == 0 else rlp.encode(value)), f"slot {key.hex()}: {found.hex()}"
        values.append(value)
    return values


def before(w3: Web3, repo: Path, state_file: Path) -> None:
    assert w3.eth.chain_id == 31337
    xtoken, reader = artifact(repo, "XToken"), artifact(repo, "WasmReader")
    start = w3.eth.get_balance(DEPLOYER.address)

    factory = w3.eth.contract(abi=xtoken["abi"], bytecode=xtoken["bytecode"])
    deploy = send(w3, DEPLOYER, {"data": factory.constructor(DEPLOYER.address).build_transaction({"from": DEPLOYER.address})["data"]})
    token = w3.eth.contract(address=deploy["contractAddress"], abi=xtoken["abi"])
    mint = send(w3, DEPLOYER, {"to": token.address, "data": token.encode_abi("mint", [ALICE.address, 1000])})
    transfer = send(w3, ALICE, {"to": token.address, "data": token.encode_abi("transfer", [BOB, 250])})

    logs = token.events.Transfer().get_logs(from_block=0, to_block="latest", argument_filters={"from": ALICE.address})
    assert len(logs) == 1, logs
    assert logs[0]["args"]["to"] == BOB and logs[0]["args"]["value"] == 250
    assert logs[0]["transactionHash"] == transfer["transactionHash"]
    assert token.functions.balanceOf(ALICE.address).call() == 750
    assert token.functions.balanceOf(BOB).call() == 250
    assert token.functions.symbol().call() == "XT"

    assert w3.eth.get_transaction_count(DEPLOYER.address) == 2
    assert w3.eth.get_transaction_count(ALICE.address, "pending") == 1
    paid = sum(receipt["gasUsed"] * receipt["effectiveGasPrice"] for receipt in (deploy, mint))
    assert w3.eth.get_balance(DEPLOYER.address) == start - paid

    try:
        token.functions.transfer(ALICE.address, 10**9).call({"from": BOB})
        raise AssertionError("a transfer above the balance should revert")
    except (ContractCustomError, ContractLogicError) as error:
        selector = Web3.keccak(text="ERC20InsufficientBalance(address,uint256,uint256)")[:4].hex()
        assert selector in str(error.data if hasattr(error, "data") else error), error

    # The WASM token through 0x...0a01, from the same wallet.
    code = (repo / "guest" / "token" / "token.wasm").read_bytes()
    deploy_data = Web3.keccak(text="deploy(string,uint32,bytes)")[:4] + encode(
        ["string", "uint32", "bytes"], ["token", 1, code]
    )
    wasm_deploy = send(w3, DEPLOYER, {"to": WASM_DEPLOY, "data": deploy_data})
    module = wasm_deploy["contractAddress"]
    assert module is not None and len(w3.eth.get_code(module)) > 0
    alice_bytes = bytes.fromhex(ALICE.address[2:])
    send(w3, ALICE, {"to": module, "data": b"\x00"})
    send(w3, ALICE, {"to": module, "data": b"\x01" + alice_bytes + (900).to_bytes(8, "big")})
    assert int.from_bytes(w3.eth.call({"to": module, "data": b"\x03" + alice_bytes}), "big") == 900

    reader_deploy = send(w3, DEPLOYER, {"data": reader["bytecode"]})
    wasm_reader = w3.eth.contract(address=reader_deploy["contractAddress"], abi=reader["abi"])
    assert wasm_reader.functions.balanceByName("token", 1, ALICE.address).call() == 900
    send(w3, ALICE, {"to": wasm_reader.address, "data": wasm_reader.encode_abi("readTokenBalance", [module, ALICE.address])})
    assert wasm_reader.functions.lastBalance().call() == 900

    latest = w3.eth.get_block("latest")
    proof = w3.eth.get_proof(token.address, ["0x" + balance_slot(BOB).hex()], latest["number"])
    assert verify_proof(proof, bytes(latest["stateRoot"])) == [250]
    early = w3.eth.get_block(mint["blockNumber"])
    proof = w3.eth.get_proof(token.address, ["0x" + balance_slot(BOB).hex()], early["number"])
    assert verify_proof(proof, bytes(early["stateRoot"])) == [0]

    state_file.write_text(
        json.dumps(
            {
                "token": token.address,
                "module": module,
                "reader": wasm_reader.address,
                "transfer": transfer["transactionHash"].hex(),
                "wasm_deploy": wasm_deploy["transactionHash"].hex(),
                "number": latest["number"],
                "hash": latest["hash"].hex(),
                "state_root": latest["stateRoot"].hex(),
            }
        )
    )
    print(f"web3.py: before the restart, all checks passed (block {latest['number']})")


def after(w3: Web3, repo: Path, state_file: Path) -> None:
    saved = json.loads(state_file.read_text())
    xtoken, reader = artifact(repo, "XToken"), artifact(repo, "WasmReader")
    latest = w3.eth.get_block("latest")
    assert latest["number"] == saved["number"]
    assert latest["hash"].hex() == saved["hash"] and latest["stateRoot"].hex() == saved["state_root"]
    assert w3.eth.get_transaction_receipt(saved["transfer"])["status"] == 1
    assert w3.eth.get_transaction_receipt(saved["wasm_deploy"])["contractAddress"] == saved["module"]
    token = w3.eth.contract(address=saved["token"], abi=xtoken["abi"])
    assert token.functions.balanceOf(BOB).call() == 250
    wasm_reader = w3.eth.contract(address=saved["reader"], abi=reader["abi"])
    assert wasm_reader.functions.balanceByName("token", 1, ALICE.address).call() == 900
    proof = w3.eth.get_proof(token.address, ["0x" + balance_slot(BOB).hex()], latest["number"])
    assert verify_proof(proof, bytes(latest["stateRoot"])) == [250]
    receipt = send(w3, ALICE, {"to": token.address, "data": token.encode_abi("transfer", [BOB, 1])})
    assert receipt["blockNumber"] == latest["number"] + 1
    # eth_call at an older block runs on that block's state.
    assert token.functions.balanceOf(BOB).call(block_identifier=latest["number"]) == 250
    assert token.functions.balanceOf(BOB).call() == 251
    # A snapshot and a revert (evm_snapshot, evm_revert) drop the block mined in between.
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    more = send(w3, ALICE, {"to": token.address, "data": token.encode_abi("transfer", [BOB, 9])})
    assert token.functions.balanceOf(BOB).call() == 260
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    assert w3.eth.block_number == receipt["blockNumber"]
    assert token.functions.balanceOf(BOB).call() == 251
    assert w3.provider.make_request("eth_getTransactionReceipt", [more["transactionHash"].to_0x_hex()])["result"] is None
    print("web3.py: after the restart, all checks passed")


def main() -> None:
    phase, url, repo, state_file = sys.argv[1:5]
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    assert w3.is_connected()
    (before if phase == "before" else after)(w3, Path(repo), Path(state_file))


if __name__ == "__main__":
    main()
