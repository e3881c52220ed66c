// The chat's lifecycle through @dfinity/pic, run by replica/tests/suite/pocket_ic_clients.rs
// with POCKET_IC_BIN = the replica binary and CHAT_WASM = the chat. Exits non-zero with the
// first expectation that failed.
const assert = require('node:assert/strict');
const { PocketIc, PocketIcServer } = require('@dfinity/pic');
const { IDL } = require('@icp-sdk/core/candid');
const { Principal } = require('@icp-sdk/core/principal');

const chatIdl = ({ IDL }) =>
  IDL.Service({
    append: IDL.Func([IDL.Text], [], []),
    dump: IDL.Func([], [IDL.Vec(IDL.Text)], ['query']),
    remove_spam: IDL.Func([], [IDL.Nat64], []),
  });

const CanisterId = IDL.Record({ canister_id: IDL.Principal });
const Snapshot = IDL.Record({ id: IDL.Vec(IDL.Nat8), taken_at_timestamp: IDL.Nat64 });
const Load = IDL.Record({ canister_id: IDL.Principal, snapshot_id: IDL.Vec(IDL.Nat8) });

async function main() {
  const server = await PocketIcServer.start({ binPath: process.env.POCKET_IC_BIN });
  const pic = await PocketIc.create(server.getUrl());
  const manage = async (method, type, value, reply) => {
    const answer = await pic.updateCall({
      canisterId: Principal.managementCanister(),
      method,
      arg: IDL.encode([type], [value]),
    });
    return reply ? IDL.decode([reply], answer)[0] : undefined;
  };

  const canisterId = await pic.createCanister();
  await pic.installCode({ canisterId, wasm: process.env.CHAT_WASM });
  const chat = pic.createActor(chatIdl, canisterId);
  await chat.append('Hi there!');
  await chat.append('How are you?');
  const before = await chat.dump();
  assert.deepEqual(before, ['Hi there!', 'How are you?']);

  const record = { canister_id: canisterId };
  await manage('stop_canister', CanisterId, record);
  const snapshot = await manage('take_canister_snapshot', CanisterId, record, Snapshot);
  assert.equal(snapshot.id.length, 18);
  await manage('start_canister', CanisterId, record);
  await chat.remove_spam();
  assert.deepEqual(await chat.dump(), [], 'the deliberate bug empties the chat');
  await manage('stop_canister', CanisterId, record);
  await manage('load_canister_snapshot', Load, { canister_id: canisterId, snapshot_id: snapshot.id });
  await manage('start_canister', CanisterId, record);
  assert.deepEqual(await chat.dump(), before, 'the snapshot brought the chat back');

  const copyId = await pic.createCanister();
  await pic.installCode({ canisterId: copyId, wasm: process.env.CHAT_WASM });
  await pic.setStableMemory(copyId, await pic.getStableMemory(canisterId));
  assert.deepEqual(await pic.createActor(chatIdl, copyId).dump(), before, 'the stable memory carried the chat');

  const start = await pic.getTime();
  await pic.advanceTime(10_000);
  await pic.tick();
  assert.ok((await pic.getTime()) >= start + 10_000, 'time moved by what was asked');

  await assert.rejects(
    pic.updateCall({ canisterId, method: 'no_such_method', arg: IDL.encode([], []) }),
    /Error code: CanisterMethodNotFound/,
  );
  const topology = await pic.getTopology();
  assert.equal(topology.length, 1);
  assert.equal(topology[0].type, 'Application');

  await pic.tearDown();
  await server.stop();
  console.log('pic-js: the chat lifecycle passed');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
