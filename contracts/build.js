// Compiles src/*.sol with the pinned solc (standard-JSON input, pinned EVM version, optimizer
// settings below) and writes one artifact per contract to artifacts/. With --check, compiles and
// fails if any artifact differs from the committed one. Run through `cargo xtask contracts`.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const EVM_VERSION = 'cancun';
const OPTIMIZER = { enabled: true, runs: 200 };
const CONTRACTS = ['XToken', 'WasmReader', 'Storage', 'CrossBench'];

const sourceDir = path.join(__dirname, 'src');
const artifactDir = path.join(__dirname, 'artifacts');
const check = process.argv.includes('--check');

function findImport(importPath) {
  const candidates = [path.join(__dirname, 'node_modules', importPath), path.join(sourceDir, importPath)];
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: `import not found: ${importPath}` };
}

const sources = {};
for (const file of fs.readdirSync(sourceDir).filter((name) => name.endsWith('.sol')).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(sourceDir, file), 'utf8') };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: OPTIMIZER,
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const errors = (output.errors || []).filter((entry) => entry.severity === 'error');
if (errors.length > 0) {
  for (const error of errors) console.error(error.formattedMessage);
  process.exit(1);
}

let differ = [];
for (const name of CONTRACTS) {
  const file = `${name}.sol`;
  const compiled = output.contracts[file] && output.contracts[file][name];
  if (!compiled) {
    console.error(`contract ${name} not found in ${file}`);
    process.exit(1);
  }
  const artifact = {
    contractName: name,
    source: `src/${file}`,
    compiler: { solc: solc.version(), evmVersion: EVM_VERSION, optimizer: OPTIMIZER },
    abi: compiled.abi,
    bytecode: '0x' + compiled.evm.bytecode.object,
    deployedBytecode: '0x' + compiled.evm.deployedBytecode.object,
  };
  const text = JSON.stringify(artifact, null, 2) + '\n';
  const target = path.join(artifactDir, `${name}.json`);
  if (check) {
    const committed = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (committed !== text) differ.push(target);
  } else {
    fs.mkdirSync(artifactDir, { recursive: true });
    fs.writeFileSync(target, text);
    console.log(`wrote ${path.relative(__dirname, target)} (${compiled.evm.deployedBytecode.object.length / 2} bytes deployed)`);
  }
}

if (differ.length > 0) {
  console.error(`artifacts differ from a fresh compile: ${differ.join(', ')} (run cargo xtask contracts)`);
  process.exit(1);
}
if (check) console.log(`artifacts match solc ${solc.version()}`);
