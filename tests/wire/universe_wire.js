// Wire test: the universe client of tapd's own npm package
// (@lightningpolar/tapd-api: tapd v0.7 protos + grpc-js) against a running
// tapvault server. Env: TAPVAULT_ADDR (host:port), TAPVAULT_CERT (PEM path),
// TAPVAULT_VECTORS (shared/vectors dir), optional TAPVAULT_TOKEN (sent as
// `authorization: Bearer …` metadata). Exits non-zero with a message on the
// first mismatch.
'use strict';
const fs = require('fs');
const path = require('path');
const assert = require('assert');
const { UniverseApi } = require('@lightningpolar/tapd-api');

const addr = process.env.TAPVAULT_ADDR;
const certPem = fs.readFileSync(process.env.TAPVAULT_CERT);
const vectors = process.env.TAPVAULT_VECTORS;
const token = process.env.TAPVAULT_TOKEN;

// The package's loader logs the proto path; keep the output readable.
const log = console.log;
console.log = () => {};
const uni = UniverseApi.create({
  socket: addr,
  cert: certPem.toString('hex'),
  // The package always sends a `macaroon` header; tapvault ignores it.
  macaroon: '00',
});
console.log = log;

// Adds the bearer token (if any) to every call through grpc-js metadata.
function call(method, req) {
  const grpc = require('@grpc/grpc-js');
  const md = new grpc.Metadata();
  if (token) md.add('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    uni.client[method](req, md, (err, res) => (err ? reject(err) : resolve(res))));
}

function reverseHex(b) {
  return Buffer.from(b).reverse().toString('hex');
}

// Minimal TAPP parsing for the leaf key: anchor txid and output index come
// from the decoded JSON the Rust side wrote, so no TLV code lives here.
const cases = JSON.parse(fs.readFileSync(
  path.join(vectors, 'taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json'))).valid_test_cases;
const derived = JSON.parse(fs.readFileSync(
  path.join(vectors, 'derived/tap_derived_values.json'))).regtest_proof_derivations.cases;

function byComment(c) {
  const v = cases.find((x) => x.comment === c);
  const d = derived.find((x) => x.comment === c);
  const [txid, vout] = d.anchor_outpoint.split(':');
  return {
    proof: Buffer.from(v.expected, 'hex'),
    assetId: Buffer.from(d.asset_id, 'hex'),
    txid,
    vout: Number(vout),
    scriptKey: Buffer.from(d.script_key, 'hex'),
  };
}

async function main() {
  const mode = process.env.TAPVAULT_MODE || 'full';
  if (mode === 'refused') {
    try {
      await call('Info', {});
    } catch (e) {
      assert.strictEqual(e.code, 16, `want UNAUTHENTICATED, got ${e.code}: ${e.details}`);
      console.log(JSON.stringify({ ok: true, refused: e.details }));
      return;
    }
    throw new Error('a call without a token was accepted');
  }
  if (mode === 'empty') {
    const roots = await call('AssetRoots', { withAmountsById: false, offset: 0, limit: 512, direction: 'SORT_DIRECTION_ASC' });
    assert.strictEqual(Object.keys(roots.universeRoots).length, 0, 'another tenant sees no roots');
    const g = byComment('valid regtest proof file index 0');
    try {
      await call('QueryProof', {
        id: { assetId: g.assetId, proofType: 'PROOF_TYPE_UNSPECIFIED' },
        leafKey: { op: { hashStr: g.txid, index: g.vout }, scriptKeyBytes: g.scriptKey },
      });
      throw new Error('another tenant could read a proof');
    } catch (e) {
      assert(String(e.details).includes('no universe proof found'), String(e));
    }
    console.log(JSON.stringify({ ok: true, empty: true }));
    return;
  }
  const info = await call('Info', {});
  assert(info.runtimeId && info.runtimeId !== '0', 'Info.runtime_id must be set');

  const files = [0, 1, 2].map((i) => byComment(`valid regtest proof file index ${i}`));

  // Federation push shape: ISSUANCE, x-only script key, op_str.
  const g = files[0];
  const fed = await call('InsertProof', {
    key: {
      id: { assetId: g.assetId, proofType: 'PROOF_TYPE_ISSUANCE' },
      leafKey: { opStr: `${g.txid}:${g.vout}`, scriptKeyBytes: g.scriptKey.subarray(1) },
    },
    assetLeaf: { proof: g.proof },
  });
  assert(fed.universeRoot && fed.universeRoot.mssmtRoot, 'InsertProof: universe_root.mssmt_root must be set');
  assert.strictEqual(fed.universeRoot.mssmtRoot.rootHash.length, 32);
  assert(fed.universeInclusionProof.length >= 34, 'InsertProof: inclusion proof must be set');
  assert(fed.assetLeaf.proof.subarray(0, 4).toString() === 'TAPP');

  // Courier shape for the rest: UNSPECIFIED, 33-byte key, op{hash_str,index}.
  for (const f of files.slice(1)) {
    await call('InsertProof', {
      key: {
        id: { assetId: f.assetId, proofType: 'PROOF_TYPE_UNSPECIFIED' },
        leafKey: { op: { hashStr: f.txid, index: f.vout }, scriptKeyBytes: f.scriptKey },
      },
      assetLeaf: { proof: f.proof },
    });
  }

  // QueryProof returns the identical bytes (courier receive shape).
  for (const f of files) {
    const q = await call('QueryProof', {
      id: { assetId: f.assetId, proofType: 'PROOF_TYPE_UNSPECIFIED' },
      leafKey: { op: { hashStr: f.txid, index: f.vout }, scriptKeyBytes: f.scriptKey },
    });
    assert(Buffer.compare(q.assetLeaf.proof, f.proof) === 0, 'QueryProof must return the stored bytes');
    assert(q.universeRoot.id, 'QueryProof: universe_root.id must be set');
  }

  // Sync walk: AssetRoots pages, QueryAssetRoots, AssetLeafKeys to an empty page.
  const roots = await call('AssetRoots', { withAmountsById: false, offset: 0, limit: 512, direction: 'SORT_DIRECTION_ASC' });
  const list = Object.values(roots.universeRoots);
  assert.strictEqual(list.length, 2, 'one issuance and one transfer universe');
  for (const r of list) {
    assert(r.id && (r.id.assetId || r.id.groupKey), 'every root carries an id');
    assert(['PROOF_TYPE_ISSUANCE', 'PROOF_TYPE_TRANSFER'].includes(r.id.proofType));
  }
  const qr = await call('QueryAssetRoots', { id: { assetId: g.assetId, proofType: 'PROOF_TYPE_TRANSFER' } });
  assert(qr.transferRoot && qr.transferRoot.mssmtRoot.rootSum === '2', 'transfer root counts two transfers');
  let offset = 0;
  let keys = [];
  for (;;) {
    const page = await call('AssetLeafKeys', {
      id: { assetId: g.assetId, proofType: 'PROOF_TYPE_TRANSFER' }, offset, limit: 512, direction: 'SORT_DIRECTION_ASC',
    });
    if (page.assetKeys.length === 0) break;
    keys = keys.concat(page.assetKeys);
    offset += 512;
  }
  assert.strictEqual(keys.length, 2);
  for (const k of keys) {
    assert(k.opStr && k.scriptKeyBytes.length === 32, 'leaf keys: op_str + x-only script key');
  }

  // v0.7's AssetLeaves takes the bare ID (v0.8 wraps it with paging; the
  // server tells them apart on the wire).
  const al = await call('AssetLeaves', { assetId: g.assetId, proofType: 'PROOF_TYPE_TRANSFER' });
  assert.strictEqual(al.leaves.length, 2, 'AssetLeaves (v0.7 bare ID): both transfer leaves');
  for (const l of al.leaves) {
    assert(l.proof.length > 0 && l.asset, 'AssetLeaves: proof bytes and decoded asset');
  }
  // v0.7's SORT_DIRECTION_DESC (1) reverses SORT_DIRECTION_ASC (0).
  const desc = await call('AssetLeafKeys', {
    id: { assetId: g.assetId, proofType: 'PROOF_TYPE_TRANSFER' }, offset: 0, limit: 512, direction: 'SORT_DIRECTION_DESC',
  });
  assert.deepStrictEqual(desc.assetKeys.map((k) => k.opStr), keys.map((k) => k.opStr).reverse(),
    'DESC is ASC reversed');

  const mv = await call('MultiverseRoot', { proofType: 'PROOF_TYPE_ISSUANCE' });
  assert(mv.multiverseRoot && mv.multiverseRoot.rootSum === '1', 'one issuance universe in the multiverse');

  // Not found keeps tapd's substrings.
  try {
    await call('QueryAssetRoots', { id: { assetId: Buffer.alloc(32, 7), proofType: 'PROOF_TYPE_ISSUANCE' } });
    throw new Error('expected not found');
  } catch (e) {
    assert(String(e.details || e.message).includes('no universe root found'), String(e));
  }
  console.log(JSON.stringify({ ok: true, roots: list.length, transfer_keys: keys.length }));
}

main().catch((e) => {
  console.error(`wire test failed: ${e.stack || e}`);
  process.exit(1);
});
