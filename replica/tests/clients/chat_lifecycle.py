"""The chat's lifecycle through the Python pocket-ic client, run by
replica/tests/suite/pocket_ic_clients.rs with POCKET_IC_BIN = the replica binary and
CHAT_WASM = the chat. Exits non-zero with the first expectation that failed."""

import os

from ic.candid import Types, decode, encode
from ic.principal import Principal
from pocket_ic import PocketIC

MANAGEMENT = Principal.management_canister()
CANISTER_ID = Types.Record({"canister_id": Types.Principal})
SNAPSHOT = Types.Record(
    {"id": Types.Vec(Types.Nat8), "taken_at_timestamp": Types.Nat64, "total_size": Types.Nat64}
)
LOAD = Types.Record({"canister_id": Types.Principal, "snapshot_id": Types.Vec(Types.Nat8)})


def text_list(reply):
    return decode(bytes(reply), [Types.Vec(Types.Text)])[0]["value"]


def manage(pic, method, kind, value):
    return pic.update_call(MANAGEMENT, method, encode([{"type": kind, "value": value}]))


def main():
    pic = PocketIC()
    chat = pic.create_canister()
    with open(os.environ["CHAT_WASM"], "rb") as wasm:
        pic.install_code(chat, wasm.read(), [])
    for text in ["Hi there!", "How are you?"]:
        pic.update_call(chat, "append", encode([{"type": Types.Text, "value": text}]))
    before = text_list(pic.query_call(chat, "dump", encode([])))
    assert before == ["Hi there!", "How are you?"], before

    record = {"canister_id": chat.to_str()}
    manage(pic, "stop_canister", CANISTER_ID, record)
    taken = manage(pic, "take_canister_snapshot", CANISTER_ID, record)
    snapshot = decode(bytes(taken), [SNAPSHOT])[0]["value"]
    manage(pic, "start_canister", CANISTER_ID, record)

    pic.update_call(chat, "remove_spam", encode([]))
    lost = text_list(pic.query_call(chat, "dump", encode([])))
    assert lost == [], f"the deliberate bug empties the chat: {lost}"

    manage(pic, "stop_canister", CANISTER_ID, record)
    assert len(snapshot["id"]) == 18, snapshot
    manage(pic, "load_canister_snapshot", LOAD, {"canister_id": chat.to_str(), "snapshot_id": snapshot["id"]})
    manage(pic, "start_canister", CANISTER_ID, record)
    after = text_list(pic.query_call(chat, "dump", encode([])))
    assert after == before, f"the snapshot brought the chat back: {after}"

    copy = pic.create_canister()
    with open(os.environ["CHAT_WASM"], "rb") as wasm:
        pic.install_code(copy, wasm.read(), [])
    pic.set_stable_memory(copy, pic.get_stable_memory(chat))
    copied = text_list(pic.query_call(copy, "dump", encode([])))
    assert copied == before, f"the stable memory carried the chat: {copied}"

    start = pic.get_time()["nanos_since_epoch"]
    pic.advance_time(10_000_000_000)
    pic.tick()
    now = pic.get_time()["nanos_since_epoch"]
    assert now >= start + 10_000_000_000, (start, now)

    balance = pic.get_cycles_balance(chat)
    after = pic.add_cycles(chat, 1_000_000)
    assert after == balance + 1_000_000, (balance, after)

    try:
        pic.update_call(chat, "no_such_method", encode([]))
    except ValueError as rejected:
        assert "CanisterMethodNotFound" in str(rejected), rejected
    else:
        raise AssertionError("a call to a missing method was not rejected")

    kinds = list(pic.topology().values())
    assert [str(kind) for kind in kinds] == ["SubnetKind.APPLICATION"], kinds
    print("python pocket-ic: the chat lifecycle passed")


main()
