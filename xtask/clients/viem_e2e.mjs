// The viem end-to-end test of `xstate node`, run by crates/xstate/tests/clients.rs against a node
// it started on loopback: `node viem_e2e.mjs before URL REPO STATE_FILE` deploys and uses the
// OpenZeppelin ERC-20 and the WASM token from the same wallet, verifies eth_getProof with
// @ethereumjs/mpt (an MPT implementation that shares no code with this project) and writes what
// it saw to STATE_FILE; after the node restarts, `node viem_e2e.mjs after URL REPO STATE_FILE`
// finds all of it again. Any failed check throws, and the process exits non-zero.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import {
  createPublicClient, createTestClient, createWalletClient, defineChain, http, encodeFunctionData, parseAbi,
  parseAbiItem, keccak256, encodeAbiParameters, hexToBytes, bytesToHex, toHex, getAddress, pad,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { verifyMerkleProof } from '@ethereumjs/mpt';
import { RLP } from '@ethereumjs/rlp';

const [, , phase, url, repo, stateFile] = process.argv;
const chain = defineChain({
  id: 31337,
  name: 'xstate',
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const transport = http(url);
const client = createPublicClient({ chain, transport, pollingInterval: 50 });
// The first two keys of the test mnemonic (public: anvil and Hardhat print them).
const deployer = privateKeyToAccount('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
const alice = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const bob = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const wallet = (account) => createWalletClient({ account, chain, transport, pollingInterval: 50 });

const artifact = (name) => JSON.parse(readFileSync(join(repo, 'contracts', 'artifacts', `${name}.json`), 'utf8'));
const xtoken = artifact('XToken');
const reader = artifact('WasmReader');
const tokenWasm = readFileSync(join(repo, 'guest', 'token', 'token.wasm'));
const deployAbi = parseAbi(['function deploy(string name, uint32 version, bytes code)']);
const WASM_DEPLOY = '0x0000000000000000000000000000000000000a01';

/** The storage slot of `holder`'s balance in an OpenZeppelin 5 ERC-20 (`_balances` is slot 0). */
const balanceSlot = (holder) => keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }], [holder, 0n]));

/** Verifies an eth_getProof answer against `stateRoot` with @ethereumjs/mpt; returns the slot values. */
async function verifyProof(proof, stateRoot) {
  const accountRlp = await verifyMerkleProof(
    hexToBytes(proof.address),
    proof.accountProof.map(hexToBytes),
    { root: hexToBytes(stateRoot), useKeyHashing: true },
  );
  assert.ok(accountRlp, 'the account is in the state');
  const [nonce, balance, storageRoot, codeHash] = RLP.decode(accountRlp);
  assert.equal(BigInt(bytesToHex(nonce.length ? nonce : new Uint8Array([0]))), BigInt(proof.nonce));
  assert.equal(BigInt(bytesToHex(balance.length ? balance : new Uint8Array([0]))), proof.balance);
  assert.equal(bytesToHex(storageRoot), proof.storageHash);
  assert.equal(bytesToHex(codeHash), proof.codeHash);
  const values = [];
  for (const slot of proof.storageProof) {
    const valueRlp = await verifyMerkleProof(
      hexToBytes(pad(slot.key, { size: 32 })),
      slot.proof.map(hexToBytes),
      { root: storageRoot, useKeyHashing: true },
    );
    const value = valueRlp ? BigInt(bytesToHex(RLP.decode(valueRlp))) : 0n;
    assert.equal(value, slot.value);
    values.push(value);
  }
  return values;
}

async function before() {
  assert.equal(await client.getChainId(), 31337);
  const start = await client.getBalance({ address: deployer.address });

  // The ERC-20 from its committed artifact.
  const deployHash = await wallet(deployer).deployContract({
    abi: xtoken.abi, bytecode: xtoken.bytecode, args: [deployer.address],
  });
  const deployReceipt = await client.waitForTransactionReceipt({ hash: deployHash });
  assert.equal(deployReceipt.status, 'success');
  const token = deployReceipt.contractAddress;
  const mintHash = await wallet(deployer).writeContract({
    address: token, abi: xtoken.abi, functionName: 'mint', args: [alice.address, 1000n],
  });
  const mintReceipt = await client.waitForTransactionReceipt({ hash: mintHash });
  assert.equal(mintReceipt.status, 'success');

  const transferHash = await wallet(alice).writeContract({
    address: token, abi: xtoken.abi, functionName: 'transfer', args: [bob, 250n],
  });
  const transfer = await client.waitForTransactionReceipt({ hash: transferHash });
  assert.equal(transfer.status, 'success');
  const logs = await client.getLogs({
    address: token,
    event: parseAbiItem('event Transfer(address indexed from, address indexed to, uint256 value)'),
    args: { from: alice.address },
    fromBlock: 0n,
    toBlock: 'latest',
  });
  assert.equal(logs.length, 1);
  assert.equal(getAddress(logs[0].args.to), getAddress(bob));
  assert.equal(logs[0].args.value, 250n);
  assert.equal(logs[0].transactionHash, transferHash);
  const balanceOf = (holder) => client.readContract({ address: token, abi: xtoken.abi, functionName: 'balanceOf', args: [holder] });
  assert.equal(await balanceOf(alice.address), 750n);
  assert.equal(await balanceOf(bob), 250n);
  assert.equal(await client.readContract({ address: token, abi: xtoken.abi, functionName: 'symbol' }), 'XT');

  // Nonces and the fees paid.
  assert.equal(await client.getTransactionCount({ address: deployer.address }), 2);
  assert.equal(await client.getTransactionCount({ address: alice.address, blockTag: 'pending' }), 1);
  const paid = deployReceipt.gasUsed * deployReceipt.effectiveGasPrice + mintReceipt.gasUsed * mintReceipt.effectiveGasPrice;
  assert.equal(await client.getBalance({ address: deployer.address }), start - paid);
  const block = await client.getBlock({ blockNumber: transfer.blockNumber });
  assert.ok(transfer.effectiveGasPrice >= block.baseFeePerGas);

  // A revert: viem decodes OpenZeppelin's custom error from the node's revert data.
  await assert.rejects(
    client.simulateContract({ account: bob, address: token, abi: xtoken.abi, functionName: 'transfer', args: [alice.address, 10n ** 9n] }),
    (error) => /ERC20InsufficientBalance/.test(String(error)),
  );

  // The WASM token through 0x…0a01, from the same wallet.
  const wasmDeployHash = await wallet(deployer).sendTransaction({
    to: WASM_DEPLOY,
    data: encodeFunctionData({ abi: deployAbi, functionName: 'deploy', args: ['token', 1, bytesToHex(tokenWasm)] }),
  });
  const wasmDeploy = await client.waitForTransactionReceipt({ hash: wasmDeployHash });
  assert.equal(wasmDeploy.status, 'success');
  const module = wasmDeploy.contractAddress;
  assert.ok(module, 'the deploy receipt names the module identity');
  assert.notEqual(await client.getCode({ address: module }), undefined, 'a module identity has code');
  const wasmCall = async (data) => {
    const hash = await wallet(alice).sendTransaction({ to: module, data });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, 'success');
    return receipt;
  };
  const aliceHex = alice.address.toLowerCase().slice(2);
  await wasmCall('0x00');
  await wasmCall(`0x01${aliceHex}${(900n).toString(16).padStart(16, '0')}`);
  const wasmBalance = await client.call({ account: alice.address, to: module, data: `0x03${aliceHex}` });
  assert.equal(BigInt(wasmBalance.data), 900n);

  // WasmReader reads that balance through the precompile at 0x…0a00.
  const readerHash = await wallet(deployer).deployContract({ abi: reader.abi, bytecode: reader.bytecode });
  const readerReceipt = await client.waitForTransactionReceipt({ hash: readerHash });
  const readerAddress = readerReceipt.contractAddress;
  const read = await client.readContract({
    address: readerAddress, abi: reader.abi, functionName: 'balanceByName', args: ['token', 1, alice.address],
  });
  assert.equal(read, 900n);
  const readHash = await wallet(alice).writeContract({
    address: readerAddress, abi: reader.abi, functionName: 'readTokenBalance', args: [module, alice.address],
  });
  assert.equal((await client.waitForTransactionReceipt({ hash: readHash })).status, 'success');
  assert.equal(await client.readContract({ address: readerAddress, abi: reader.abi, functionName: 'lastBalance' }), 900n);

  // eth_getProof of bob's balance slot, against the block's stateRoot.
  const latest = await client.getBlock();
  const proof = await client.getProof({ address: token, storageKeys: [balanceSlot(bob)], blockNumber: latest.number });
  assert.deepEqual(await verifyProof(proof, latest.stateRoot), [250n]);
  const early = await client.getBlock({ blockNumber: mintReceipt.blockNumber });
  const earlyProof = await client.getProof({ address: token, storageKeys: [balanceSlot(bob)], blockNumber: early.number });
  assert.deepEqual(await verifyProof(earlyProof, early.stateRoot), [0n]);

  writeFileSync(stateFile, JSON.stringify({
    token, module, reader: readerAddress, transferHash, wasmDeployHash,
    latest: { number: latest.number.toString(), hash: latest.hash, stateRoot: latest.stateRoot },
  }));
  console.log(`viem: before the restart, all checks passed (block ${latest.number})`);
}

async function after() {
  const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
  const latest = await client.getBlock();
  assert.equal(latest.number.toString(), saved.latest.number);
  assert.equal(latest.hash, saved.latest.hash);
  assert.equal(latest.stateRoot, saved.latest.stateRoot);
  const transfer = await client.getTransactionReceipt({ hash: saved.transferHash });
  assert.equal(transfer.status, 'success');
  assert.equal((await client.getTransactionReceipt({ hash: saved.wasmDeployHash })).contractAddress, saved.module);
  assert.equal(await client.readContract({ address: saved.token, abi: xtoken.abi, functionName: 'balanceOf', args: [bob] }), 250n);
  assert.equal(
    await client.readContract({ address: saved.reader, abi: reader.abi, functionName: 'balanceByName', args: ['token', 1, alice.address] }),
    900n,
  );
  const proof = await client.getProof({ address: saved.token, storageKeys: [balanceSlot(bob)], blockNumber: latest.number });
  assert.deepEqual(await verifyProof(proof, latest.stateRoot), [250n]);
  // The chain goes on after the restart.
  const hash = await wallet(alice).writeContract({ address: saved.token, abi: xtoken.abi, functionName: 'transfer', args: [bob, 1n] });
  const receipt = await client.waitForTransactionReceipt({ hash });
  assert.equal(receipt.blockNumber, latest.number + 1n);
  const balanceOfBob = (blockNumber) =>
    client.readContract({ address: saved.token, abi: xtoken.abi, functionName: 'balanceOf', args: [bob], blockNumber });
  // eth_call at an older block runs on that block's state.
  assert.equal(await balanceOfBob(latest.number), 250n);
  assert.equal(await balanceOfBob(undefined), 251n);
  // A snapshot and a revert, through viem's test actions (evm_snapshot, evm_revert).
  const testClient = createTestClient({ chain, mode: 'anvil', transport });
  const snapshot = await testClient.snapshot();
  const more = await wallet(alice).writeContract({ address: saved.token, abi: xtoken.abi, functionName: 'transfer', args: [bob, 9n] });
  await client.waitForTransactionReceipt({ hash: more });
  assert.equal(await balanceOfBob(undefined), 260n);
  await testClient.revert({ id: snapshot });
  assert.equal(await client.getBlockNumber(), receipt.blockNumber);
  assert.equal(await balanceOfBob(undefined), 251n);
  assert.equal(await client.getTransactionReceipt({ hash: more }).catch(() => null), null);
  console.log('viem: after the restart, all checks passed');
}

await (phase === 'before' ? before() : after());
