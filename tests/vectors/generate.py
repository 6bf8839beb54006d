#!/usr/bin/env python3
"""Writes the golden vectors frames.json and bad_frames.json.

This is a second implementation of the HyperStreams wire format, written
from docs/PROTOCOL.md with nothing but the standard library, so that the C++
codec in shared/ is checked against something other than itself. It encodes
every vector from its fields, decodes the bytes back with its own decoder and
refuses to write a file when the two disagree; every malformed input is run
through the same decoder and must fail with the code the file records.

Usage: python3 tests/vectors/generate.py [output-directory]
(the default output directory is the one this script lives in).
"""

import json
import struct
import sys
from pathlib import Path

VERSION = 1
HEADER = struct.Struct("<BBBBII")  # version, kind, flags, name_len, id, body_len
assert HEADER.size == 12

DEFAULT_MAX_PAYLOAD = 1 << 20
DEFAULT_MAX_FRAMES = 65536

# kind name -> (kind byte, ext fields as (field, struct code) in wire order)
KINDS = {
    "hello": (0x01, []),
    "welcome": (0x02, []),
    "goodbye": (0x03, [("code", "H")]),
    "ping": (0x04, []),
    "pong": (0x05, []),
    "redirect": (0x06, [("code", "H")]),
    "token_refresh": (0x07, []),
    "ack": (0x08, [("epoch", "I"), ("seq", "Q")]),
    "error": (0x09, [("code", "H")]),
    "routers": (0x0A, []),
    "subscribe": (0x10, [("epoch", "I"), ("seq", "Q")]),
    "unsubscribe": (0x11, []),
    "publish": (0x12, []),
    "message": (0x13, [("epoch", "I"), ("seq", "Q")]),
    "gap": (0x14, [("epoch", "I"), ("seq", "Q"), ("count", "I")]),
    "presence": (0x15, []),
    "presence_list": (0x16, []),
    "join": (0x17, []),
    "leave": (0x18, []),
    "subscribed": (0x19, []),
    "unsubscribed": (0x1A, [("code", "H")]),
    "subscribe_client": (0x1B, []),
    "unsubscribe_client": (0x1C, []),
    "request": (0x20, [("deadline_ms", "I")]),
    "response": (0x21, []),
    "stream_open": (0x22, [("deadline_ms", "I"), ("credit", "I")]),
    "stream_item": (0x23, []),
    "stream_end": (0x24, []),
    "stream_credit": (0x25, [("credit", "I")]),
    "cancel": (0x26, []),
    "direct": (0x30, []),
    "broadcast": (0x31, []),
    "register_service": (0x40, []),
    "unregister_service": (0x41, []),
    "discover": (0x42, []),
    "service_list": (0x43, []),
}
KIND_BY_BYTE = {value: name for name, (value, _) in KINDS.items()}
EXT_FIELDS = ("epoch", "seq", "count", "deadline_ms", "credit", "code")

# Flag bits.
JSON = 0x01
ACK_REQUESTED = 0x02
SINCE = 0x04
REPLAYED = 0x08
LATEST = 0x40      # subscribe
JOIN_LEAVE = 0x80  # subscribe
RESUBSCRIBES = 0x40  # hello
IDEMPOTENCY_KEY = 0x04  # publish
TTL = 0x08              # publish
POLICY = {"router_default": 0, "drop_oldest": 1, "keep_latest": 2, "disconnect": 3}

ERRC = {
    "truncated": 1, "length_out_of_bounds": 2, "frame_too_large": 3,
    "unknown_kind": 4, "unsupported_version": 5, "trailing_bytes": 6,
    "malformed_body": 7, "invalid_name": 8, "empty_batch": 9,
    "name_too_long": 10,
    "unexpected_frame": 100, "handshake_timeout": 101,
    "heartbeat_timeout": 102, "version_mismatch": 103, "duplicate_id": 104,
    "protocol_violation": 105,
    "no_such_service": 200, "no_instance_available": 201,
    "deadline_exceeded": 202, "no_such_address": 203, "backend_gone": 204,
    "cancelled": 205, "no_such_stream": 206, "history_gone": 207,
    "slow_consumer": 208, "going_away": 209, "not_subscribed": 210,
    "handler_failed": 211, "cluster_unavailable": 212, "cluster_outcome_unknown": 213,
    "unauthorized": 300, "token_expired": 301, "forbidden": 302,
    "origin_not_allowed": 303,
    "too_many_subscriptions": 400, "too_many_pending_requests": 401,
    "rate_limited": 402, "too_many_connections": 403, "outbox_full": 404,
    "too_many_services": 405, "payload_too_large": 406,
}

ROLES = {"frontend": 1, "backend": 2}
METHOD_KINDS = {"unary": 1, "stream": 2}
BODY_KINDS = ("hello", "welcome", "register_service", "service_list", "routers",
              "presence_list", "join", "leave")


class DecodeError(Exception):
    def __init__(self, code, frames_before=0):
        super().__init__(code)
        self.code = code
        self.frames_before = frames_before


# ---------------------------------------------------------------- bodies

def put_str(s):
    raw = s.encode("utf-8")
    assert len(raw) <= 0xFFFF
    return struct.pack("<H", len(raw)) + raw


def put_methods(methods):
    out = struct.pack("<H", len(methods))
    for m in methods:
        out += put_str(m["name"]) + struct.pack("<B", METHOD_KINDS[m["kind"]])
    return out


def put_member(m):
    return put_str(m["address"]) + put_str(m["subject"]) + put_str(m["name"])


def encode_body(kind, b):
    if kind == "hello":
        return (struct.pack("<HHB", b["min_version"], b["max_version"], ROLES[b["role"]])
                + put_str(b["name"]) + put_str(b["token"]) + put_str(b["resume_session"]))
    if kind == "welcome":
        return (struct.pack("<H", b["version"]) + put_str(b["session_id"])
                + put_str(b["router_id"])
                + struct.pack("<IIIB", b["heartbeat_ms"], b["max_payload"],
                              b["max_subscriptions"], 1 if b["resumed"] else 0))
    if kind == "register_service":
        return put_methods(b["methods"])
    if kind == "service_list":
        out = struct.pack("<H", len(b["services"]))
        for s in b["services"]:
            out += put_str(s["name"]) + struct.pack("<H", s["instances"]) + put_methods(s["methods"])
        return out
    if kind == "routers":
        out = struct.pack("<H", len(b["routers"]))
        for r in b["routers"]:
            out += put_str(r["id"]) + put_str(r["backend"])
        return out
    if kind == "presence_list":
        return (struct.pack("<IH", b["count"], len(b["members"]))
                + b"".join(put_member(m) for m in b["members"]))
    if kind in ("join", "leave"):
        return put_member(b)
    raise ValueError(kind)


class BodyReader:
    def __init__(self, data):
        self.data = data
        self.at = 0

    def take(self, n):
        if len(self.data) - self.at < n:
            raise DecodeError("malformed_body")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def str(self):
        # Every str is well-formed UTF-8; Python's strict decoder refuses
        # what RFC 3629 refuses (overlong forms, surrogates, cut characters).
        try:
            return self.take(self.u16()).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("malformed_body") from None

    def methods(self):
        methods = []
        for _ in range(self.u16()):
            name = self.str()
            kind = self.u8()
            if kind not in METHOD_KINDS.values():
                raise DecodeError("malformed_body")
            methods.append({"name": name, "kind": name_of(METHOD_KINDS, kind)})
        return methods

    def member(self):
        return {"address": self.str(), "subject": self.str(), "name": self.str()}

    def finish(self, value):
        if self.at != len(self.data):
            raise DecodeError("malformed_body")
        return value


def name_of(table, value):
    return next(k for k, v in table.items() if v == value)


def decode_body(kind, data):
    r = BodyReader(data)
    if kind == "hello":
        min_version, max_version, role = r.u16(), r.u16(), r.u8()
        body = {"min_version": min_version, "max_version": max_version, "role": role,
                "name": r.str(), "token": r.str(), "resume_session": r.str()}
        if role not in ROLES.values():
            raise DecodeError("malformed_body")
        body["role"] = name_of(ROLES, role)
        return r.finish(body)
    if kind == "welcome":
        body = {"version": r.u16(), "session_id": r.str(), "router_id": r.str(),
                "heartbeat_ms": r.u32(), "max_payload": r.u32(),
                "max_subscriptions": r.u32()}
        resumed = r.u8()
        if resumed > 1:
            raise DecodeError("malformed_body")
        body["resumed"] = resumed == 1
        return r.finish(body)
    if kind == "register_service":
        return r.finish({"methods": r.methods()})
    if kind == "service_list":
        services = []
        for _ in range(r.u16()):
            services.append({"name": r.str(), "instances": r.u16(), "methods": r.methods()})
        return r.finish({"services": services})
    if kind == "routers":
        routers = []
        for _ in range(r.u16()):
            routers.append({"id": r.str(), "backend": r.str()})
        return r.finish({"routers": routers})
    if kind == "presence_list":
        count, listed = r.u32(), r.u16()
        if listed > count:
            raise DecodeError("malformed_body")
        return r.finish({"count": count, "members": [r.member() for _ in range(listed)]})
    if kind in ("join", "leave"):
        return r.finish(r.member())
    raise ValueError(kind)


# ---------------------------------------------------------------- publish options

def message_json(message):
    return {"message_text": message.decode("utf-8")} if is_text(message) else {"message_hex": message.hex()}


def encode_publish_options(flags, o):
    out = b""
    if flags & IDEMPOTENCY_KEY:
        key = o["key"].encode("ascii")
        assert 1 <= len(key) <= 255 and all(0x21 <= c <= 0x7E for c in key)
        out += struct.pack("<B", len(key)) + key
    if flags & TTL:
        assert o["ttl_s"] >= 1
        out += struct.pack("<I", o["ttl_s"])
    return out


def decode_publish_options(flags, data):
    """The options block of a publish payload, and its message."""
    r = BodyReader(data)
    o = {}
    if flags & IDEMPOTENCY_KEY:
        key = r.take(r.u8())
        if not key or not all(0x21 <= c <= 0x7E for c in key):
            raise DecodeError("malformed_body")
        o["key"] = key.decode("ascii")
    if flags & TTL:
        o["ttl_s"] = r.u32()
        if o["ttl_s"] == 0:
            raise DecodeError("malformed_body")
    o.update(message_json(data[r.at:]))
    return o


def has_options(f):
    return f["kind"] == "publish" and f["flags"] & (IDEMPOTENCY_KEY | TTL)


# ---------------------------------------------------------------- frames

def full_fields(f):
    """A frame's fields with every absent field at its zero value."""
    full = {"kind": f["kind"], "flags": f.get("flags", 0), "id": f.get("id", 0),
            "name": f.get("name", "")}
    for field in EXT_FIELDS:
        full[field] = f.get(field, 0)
    if "body" in f:
        full["payload"] = encode_body(f["kind"], f["body"])
        full["body"] = f["body"]
    elif "options" in f:
        message = f.get("payload", b"")
        full["payload"] = encode_publish_options(full["flags"], f["options"]) + message
        full["options"] = {**f["options"], **message_json(message)}
    else:
        full["payload"] = f.get("payload", b"")
    return full


def encode_frame(f):
    f = full_fields(f)
    kind_byte, ext_fields = KINDS[f["kind"]]
    name = f["name"].encode("utf-8")
    if len(name) > 255:
        raise ValueError("name_too_long")
    ext = b"".join(struct.pack("<" + code, f[field]) for field, code in ext_fields)
    body_len = len(ext) + len(f["payload"])
    # After the header: the kind's fixed fields, the name, then the payload.
    return (HEADER.pack(VERSION, kind_byte, f["flags"], len(name), f["id"], body_len)
            + ext + name + f["payload"])


def decode_frame(data, max_payload):
    """Decodes the frame at the start of `data`: (fields, size on the wire)."""
    if len(data) < HEADER.size:
        raise DecodeError("truncated")
    version, kind_byte, flags, name_len, ident, body_len = HEADER.unpack_from(data)
    if version != VERSION:
        raise DecodeError("unsupported_version")
    if kind_byte not in KIND_BY_BYTE:
        raise DecodeError("unknown_kind")
    kind = KIND_BY_BYTE[kind_byte]
    ext_fields = KINDS[kind][1]
    ext_len = sum(struct.calcsize("<" + code) for _, code in ext_fields)
    if body_len > max_payload + ext_len:
        raise DecodeError("frame_too_large")
    if body_len < ext_len:
        raise DecodeError("malformed_body")
    total = HEADER.size + name_len + body_len
    if total > len(data):
        raise DecodeError("length_out_of_bounds")
    f = {"kind": kind, "flags": flags, "id": ident}
    for field in EXT_FIELDS:
        f[field] = 0
    at = HEADER.size
    for field, code in ext_fields:
        (f[field],) = struct.unpack_from("<" + code, data, at)
        at += struct.calcsize("<" + code)
    f["name"] = data[at:at + name_len].decode("utf-8")
    at += name_len
    f["payload"] = data[at:total]
    return f, total


def decode_batch(data, max_payload=DEFAULT_MAX_PAYLOAD, max_frames=DEFAULT_MAX_FRAMES):
    if not data:
        raise DecodeError("empty_batch")
    frames = []
    at = 0
    while at < len(data):
        if frames and len(data) - at < HEADER.size:
            raise DecodeError("trailing_bytes", len(frames))
        if len(frames) >= max_frames:
            raise DecodeError("frame_too_large", len(frames))
        try:
            f, size = decode_frame(data[at:], max_payload)
        except DecodeError as e:
            raise DecodeError(e.code, len(frames)) from None
        frames.append(f)
        at += size
    return frames


# ---------------------------------------------------------------- JSON form

def is_text(payload):
    """The README's rule: text when valid UTF-8 without control characters."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ord(c) >= 0x20 and ord(c) != 0x7F for c in text)


def to_json(f):
    out = {"kind": f["kind"], "flags": f["flags"], "id": f["id"], "name": f["name"]}
    if is_text(f["payload"]):
        out["payload_text"] = f["payload"].decode("utf-8")
    else:
        out["payload_hex"] = f["payload"].hex()
    for field in EXT_FIELDS:
        out[field] = str(f[field]) if field == "seq" else f[field]
    if "body" in f:
        out["body"] = f["body"]
    if "options" in f:
        out["options"] = f["options"]
    return out


def text(s):
    return s.encode("utf-8")


# ---------------------------------------------------------------- vectors

TOKEN = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"  # header.payload.signature, kept short

GOOD = [
    ("hello_frontend_with_token", "A frontend opens a session with a JWT.", [
        {"kind": "hello", "body": {"min_version": 1, "max_version": 1, "role": "frontend",
                                   "name": "dashboard", "token": TOKEN, "resume_session": ""}}]),
    ("hello_backend_resume", "A backend that speaks versions 1..3 asks to resume a session.", [
        {"kind": "hello", "body": {"min_version": 1, "max_version": 3, "role": "backend",
                                   "name": "inventory-7", "token": "", "resume_session": "s-41f0"}}]),
    ("hello_backend_follow_cluster", "A backend asks to hear of the cluster's routers (flag 0x80).", [
        {"kind": "hello", "flags": 0x80, "body": {"min_version": 1, "max_version": 1, "role": "backend",
                                                  "name": "inventory-7", "token": "", "resume_session": ""}}]),
    ("hello_resubscribes", "A frontend that restores its server-side subscriptions itself (flag 0x40): "
     "the router does not apply the token's channels.", [
        {"kind": "hello", "flags": RESUBSCRIBES, "body": {"min_version": 1, "max_version": 1, "role": "frontend",
                                                          "name": "dashboard", "token": TOKEN,
                                                          "resume_session": ""}}]),
    ("welcome_new_session", "The router accepts version 1 and opens a new session.", [
        {"kind": "welcome", "body": {"version": 1, "session_id": "s-41f0", "router_id": "r1",
                                     "heartbeat_ms": 15000, "max_payload": 1048576,
                                     "max_subscriptions": 256, "resumed": False}}]),
    ("welcome_resumed", "The router resumed the previous session.", [
        {"kind": "welcome", "body": {"version": 1, "session_id": "s-41f0", "router_id": "r2",
                                     "heartbeat_ms": 10000, "max_payload": 65536,
                                     "max_subscriptions": 64, "resumed": True}}]),
    ("goodbye_going_away", "The router closes a session because it drains.", [
        {"kind": "goodbye", "code": ERRC["going_away"], "payload": text("draining for maintenance")}]),
    ("goodbye_normal", "A client leaves; code 0 means a normal close.", [
        {"kind": "goodbye"}]),
    ("ping", "Heartbeat with nonce 0x01020304 (note the little-endian id).", [
        {"kind": "ping", "id": 0x01020304}]),
    ("pong", "The answer to that ping carries the same id.", [
        {"kind": "pong", "id": 0x01020304}]),
    ("redirect", "The router sends the client to another router.", [
        {"kind": "redirect", "code": ERRC["going_away"],
         "payload": text("wss://router-2.example.net/ws")}]),
    ("token_refresh", "A client presents a fresh token over the open connection.", [
        {"kind": "token_refresh", "id": 7, "payload": text(TOKEN)}]),
    ("ack_publish", "Acknowledges publish 17: the message got epoch 3, seq 1001.", [
        {"kind": "ack", "id": 17, "epoch": 3, "seq": 1001}]),
    ("ack_plain", "Acknowledges request 1 (e.g. a subscribe) without a position.", [
        {"kind": "ack", "id": 1}]),
    ("error_with_code_and_text", "Request 9 failed: forbidden, with a human-readable text.", [
        {"kind": "error", "id": 9, "code": ERRC["forbidden"],
         "payload": text("publish to factory.line1.m3.cmd not allowed")}]),
    ("error_connection_level", "Id 0: the error concerns the connection, not one request.", [
        {"kind": "error", "code": ERRC["malformed_body"], "payload": text("bad hello")}]),
    ("subscribe_plain", "Subscribe to a pattern, no resume position, router-default policy.", [
        {"kind": "subscribe", "id": 1, "name": "factory.*.m3.>"}]),
    ("subscribe_since_drop_oldest", "Resume after epoch 2 seq 1500; drop_oldest policy.", [
        {"kind": "subscribe", "id": 2, "flags": SINCE | (POLICY["drop_oldest"] << 4),
         "name": "factory.line1.m3.telemetry", "epoch": 2, "seq": 1500}]),
    ("subscribe_keep_latest", "keep_latest policy, no resume position.", [
        {"kind": "subscribe", "id": 3, "flags": POLICY["keep_latest"] << 4, "name": "factory.*.status"}]),
    ("subscribe_since_disconnect", "Resume position and the disconnect policy.", [
        {"kind": "subscribe", "id": 4, "flags": SINCE | (POLICY["disconnect"] << 4),
         "name": "alarms.>", "epoch": 0xFFFFFFFF, "seq": 0xFFFFFFFFFFFFFFFF}]),
    ("subscribe_latest", "The last message of every matching channel first; keep_latest policy.", [
        {"kind": "subscribe", "id": 6, "flags": LATEST | (POLICY["keep_latest"] << 4),
         "name": "factory.*.*.telemetry"}]),
    ("unsubscribe", "Drops the subscription made with that pattern.", [
        {"kind": "unsubscribe", "id": 5, "name": "factory.*.m3.>"}]),
    ("publish_json", "Fire-and-forget publish of a JSON payload.", [
        {"kind": "publish", "flags": JSON, "name": "factory.line1.m3.telemetry",
         "payload": text('{"temp":21.5}')}]),
    ("publish_ack_requested", "Publish that asks for an ack (id 17 correlates it).", [
        {"kind": "publish", "id": 17, "flags": JSON | ACK_REQUESTED,
         "name": "factory.line1.m3.telemetry", "payload": text('{"temp":21.6}')}]),
    ("publish_binary", "Opaque binary payload.", [
        {"kind": "publish", "name": "factory.line1.m3.raw", "payload": bytes([0x00, 0x01, 0xFE, 0xFF])}]),
    ("publish_empty_payload", "An empty payload is valid.", [
        {"kind": "publish", "name": "factory.line1.tick"}]),
    ("publish_idempotency_key", "Publish with the idempotency key 'order-17' (flag 0x04): the payload starts "
     "with the key's length and bytes, the message follows.", [
        {"kind": "publish", "id": 18, "flags": JSON | ACK_REQUESTED | IDEMPOTENCY_KEY, "name": "orders.new",
         "options": {"key": "order-17"}, "payload": text('{"qty":3}')}]),
    ("publish_ttl", "Publish that expires 60 s after the router placed it (flag 0x08).", [
        {"kind": "publish", "flags": TTL, "name": "factory.line1.m3.alarm",
         "options": {"ttl_s": 60}, "payload": text("overheat")}]),
    ("publish_key_and_ttl", "Both options: the key first, then the ttl (u32 LE), then the message.", [
        {"kind": "publish", "id": 19, "flags": ACK_REQUESTED | IDEMPOTENCY_KEY | TTL, "name": "orders.new",
         "options": {"key": "k", "ttl_s": 0xFFFFFFFF}, "payload": bytes([0x00, 0xFF])}]),
    ("publish_unknown_flag_bits", "Flag bits 6 and 7 mean nothing on publish: kept, ignored.", [
        {"kind": "publish", "flags": 0xC0 | JSON, "name": "a.b", "payload": text("{}")}]),
    ("subscribe_join_leave", "A subscription that asks for the channel's joins and leaves (flag 0x80).", [
        {"kind": "subscribe", "id": 6, "flags": JOIN_LEAVE, "name": "factory.line1.status"}]),
    ("subscribed", "The router subscribed this connection to a pattern (token channels or a backend), "
     "policy keep_latest (flags bits 4-5).", [
        {"kind": "subscribed", "flags": POLICY["keep_latest"] << 4, "name": "orders.alice.>"}]),
    ("unsubscribed", "A backend ended a server-side subscription (code 0).", [
        {"kind": "unsubscribed", "name": "orders.alice.>", "code": 0}]),
    ("unsubscribed_forbidden", "A token refresh withdrew a server-side subscription.", [
        {"kind": "unsubscribed", "name": "orders.alice.>", "code": ERRC["forbidden"]}]),
    ("subscribe_client", "A backend subscribes the connection at address 'r1-7-0000002a' to a pattern "
     "(id 21 correlates the ack or error; policy drop_oldest).", [
        {"kind": "subscribe_client", "id": 21, "flags": POLICY["drop_oldest"] << 4, "name": "orders.alice.>",
         "payload": text("r1-7-0000002a")}]),
    ("unsubscribe_client", "A backend ends that server-side subscription.", [
        {"kind": "unsubscribe_client", "id": 22, "name": "orders.alice.>", "payload": text("r1-7-0000002a")}]),
    ("presence", "Who is subscribed to a channel (id 9 correlates the answer).", [
        {"kind": "presence", "id": 9, "name": "factory.line1.status"}]),
    ("presence_list", "Two members, one with a token's subject, one anonymous.", [
        {"kind": "presence_list", "id": 9, "body": {"count": 2, "members": [
            {"address": "r-2b7c.5", "subject": "alice", "name": "dashboard"},
            {"address": "r-9f01.12", "subject": "", "name": "hs-cli"}]}}]),
    ("presence_list_cut", "Three members, of which one fits in the frame.", [
        {"kind": "presence_list", "id": 10, "body": {"count": 3, "members": [
            {"address": "r-2b7c.5", "subject": "alice", "name": "dashboard"}]}}]),
    ("join", "A member joined the channel.", [
        {"kind": "join", "name": "factory.line1.status",
         "body": {"address": "r-2b7c.5", "subject": "alice", "name": "dashboard"}}]),
    ("leave", "A member left the channel.", [
        {"kind": "leave", "name": "factory.line1.status",
         "body": {"address": "r-9f01.12", "subject": "", "name": "hs-cli"}}]),
    ("message_json", "Delivery of a JSON message: epoch 1, seq 42.", [
        {"kind": "message", "flags": JSON, "name": "factory.line1.m3.telemetry",
         "epoch": 1, "seq": 42, "payload": text('{"temp":21.5}')}]),
    ("message_replayed_large_seq", "Replayed from history; seq uses all 8 bytes.", [
        {"kind": "message", "flags": JSON | REPLAYED, "name": "factory.line1.m3.telemetry",
         "epoch": 0x0A0B0C0D, "seq": 0x0102030405060708, "payload": text('{"temp":20.9}')}]),
    ("gap", "Five messages from seq 43 on were not delivered.", [
        {"kind": "gap", "name": "factory.line1.m3.telemetry", "epoch": 1, "seq": 43, "count": 5}]),
    ("request_with_deadline", "Calls inventory/lookup with a 5 s deadline.", [
        {"kind": "request", "id": 100, "flags": JSON, "name": "inventory/lookup",
         "deadline_ms": 5000, "payload": text('{"sku":"A-17"}')}]),
    ("request_no_deadline", "deadline_ms 0: the router applies its default.", [
        {"kind": "request", "id": 101, "name": "factory.history/count", "payload": b""}]),
    ("response", "The result of request 100.", [
        {"kind": "response", "id": 100, "flags": JSON, "payload": text('{"qty":12}')}]),
    ("stream_open_with_credit", "Opens stream 200 with a 30 s deadline and 16 items of credit.", [
        {"kind": "stream_open", "id": 200, "flags": JSON, "name": "factory.history/replay",
         "deadline_ms": 30000, "credit": 16, "payload": text('{"from":0}')}]),
    ("stream_item", "One item of stream 200.", [
        {"kind": "stream_item", "id": 200, "flags": JSON, "payload": text('{"n":1}')}]),
    ("stream_credit", "The receiver grants 8 more items.", [
        {"kind": "stream_credit", "id": 200, "credit": 8}]),
    ("stream_end", "Normal end of stream 200.", [
        {"kind": "stream_end", "id": 200}]),
    ("cancel", "The caller abandons request or stream 200.", [
        {"kind": "cancel", "id": 200}]),
    ("direct_sent", "To the session with address s-41f0.", [
        {"kind": "direct", "flags": JSON, "name": "s-41f0", "payload": text('{"hi":1}')}]),
    ("direct_delivered", "Delivered: the name is now the sender's address.", [
        {"kind": "direct", "flags": JSON, "name": "s-9c2e", "payload": text('{"hi":1}')}]),
    ("broadcast_sent", "Sent: the name is empty.", [
        {"kind": "broadcast", "payload": text("shift change at 14:00")}]),
    ("broadcast_delivered", "Delivered: the name is the sender's address.", [
        {"kind": "broadcast", "name": "s-9c2e", "payload": text("shift change at 14:00")}]),
    ("register_service", "A backend registers inventory with a unary and a stream method.", [
        {"kind": "register_service", "id": 11, "name": "inventory",
         "body": {"methods": [{"name": "lookup", "kind": "unary"},
                              {"name": "watch", "kind": "stream"}]}}]),
    ("register_service_no_methods", "A service with no methods is valid (count 0).", [
        {"kind": "register_service", "id": 12, "name": "health", "body": {"methods": []}}]),
    ("unregister_service", "The backend withdraws inventory.", [
        {"kind": "unregister_service", "id": 13, "name": "inventory"}]),
    ("discover", "Asks for the service list.", [
        {"kind": "discover", "id": 5}]),
    ("service_list", "Two services, one with two instances.", [
        {"kind": "service_list", "id": 5, "body": {"services": [
            {"name": "inventory", "instances": 2,
             "methods": [{"name": "lookup", "kind": "unary"}, {"name": "watch", "kind": "stream"}]},
            {"name": "factory.history", "instances": 1,
             "methods": [{"name": "replay", "kind": "stream"}]}]}}]),
    ("service_list_empty", "No services registered.", [
        {"kind": "service_list", "id": 6, "body": {"services": []}}]),
    ("routers", "A router of a cluster tells a backend that follows it of the two other routers.", [
        {"kind": "routers", "body": {"routers": [
            {"id": "r-2b7c", "backend": "tcp://10.0.0.12:7071"},
            {"id": "r-5d10", "backend": "tcp://10.0.0.13:7071"}]}}]),
    ("routers_empty", "The router is the only one left.", [
        {"kind": "routers", "body": {"routers": []}}]),
    ("batch_of_three", "One transport message with three frames back to back.", [
        {"kind": "subscribe", "id": 1, "name": "factory.>"},
        {"kind": "publish", "id": 2, "flags": JSON | ACK_REQUESTED, "name": "factory.line1.state",
         "payload": text('{"on":true}')},
        {"kind": "ping", "id": 3}]),
]


def header(kind, body_len, name_len=0, version=VERSION):
    """A bare header; `kind` is a kind name or a raw byte."""
    kind_byte = KINDS[kind][0] if isinstance(kind, str) else kind
    return HEADER.pack(version, kind_byte, 0, name_len, 0, body_len)


def frame_with_payload(kind, payload, name=""):
    return encode_frame({"kind": kind, "name": name, "payload": payload})


PING = encode_frame({"kind": "ping", "id": 1})
MiB = 1 << 20

BAD_FRAMES = [
    ("empty_batch", "A transport message with no bytes.", b"", "empty_batch"),
    ("truncated_1_byte", "One byte: not even a header.", bytes([1]), "truncated"),
    ("truncated_11_bytes", "Eleven bytes of a ping header.", PING[:11], "truncated"),
    ("version_0", "Version byte 0.", bytes([0]) + PING[1:], "unsupported_version"),
    ("version_2", "Version byte 2 (a future version).", bytes([2]) + PING[1:], "unsupported_version"),
    ("version_checked_before_kind", "Version 2 and kind 0xEE: the version is reported.",
     header(0xEE, 0, version=2), "unsupported_version"),
    ("unknown_kind_0x00", "Kind 0 is not defined.", header(0x00, 0), "unknown_kind"),
    ("unknown_kind_0x1d", "Kind 0x1D, between unsubscribe_client and request.", header(0x1D, 0), "unknown_kind"),
    ("unknown_kind_0xff", "Kind 0xFF.", header(0xFF, 0), "unknown_kind"),
    ("kind_checked_before_length", "Unknown kind and a 4 GiB body: the kind is reported.",
     header(0x7F, 0xFFFFFFFF), "unknown_kind"),
    ("body_len_4gib", "A 12-byte header claiming a 4 GiB body.",
     header("publish", 0xFFFFFFFF), "frame_too_large"),
    ("body_len_cap_plus_one", "publish body_len = 1 MiB + 1 (default cap), only the header present.",
     header("publish", MiB + 1), "frame_too_large"),
    ("body_len_cap_excludes_ext", "message body_len = 1 MiB + 13: payload 1 MiB + 1 after the 12-byte ext.",
     header("message", MiB + 12 + 1), "frame_too_large"),
    ("body_len_at_cap_past_end", "message body_len = 1 MiB + 12 is allowed, but the bytes are missing.",
     header("message", MiB + 12), "length_out_of_bounds"),
    ("name_len_past_end", "publish with name_len 10 but only 4 name bytes.",
     header("publish", 0, name_len=10) + b"a.b.", "length_out_of_bounds"),
    ("body_len_past_end", "publish with body_len 8 but only 3 payload bytes.",
     header("publish", 8, name_len=1) + b"x" + b"abc", "length_out_of_bounds"),
    ("body_shorter_than_ext", "message with body_len 4; its ext needs 12 bytes.",
     header("message", 4, name_len=1) + bytes(4) + b"x", "malformed_body"),
    ("body_shorter_than_ext_checked_before_bounds", "gap with body_len 15 (ext 16) and nothing after the header.",
     header("gap", 15), "malformed_body"),
    ("stream_credit_without_ext", "stream_credit with body_len 0; its ext needs 4 bytes.",
     header("stream_credit", 0), "malformed_body"),
] + [
    (f"trailing_{n}_bytes", f"A ping followed by {n} stray byte(s).", PING + bytes(range(1, n + 1)),
     "trailing_bytes")
    for n in range(1, 12)
] + [
    ("second_frame_unknown_kind", "A valid ping, then a frame of kind 0x99; the ping is yielded.",
     PING + header(0x99, 0), "unknown_kind"),
    ("second_frame_past_end", "A valid ping, then a publish whose body runs past the end.",
     PING + header("publish", 100) + b"abc", "length_out_of_bounds"),
]

# (name, description, input, error, limits)
BAD_WITH_LIMITS = [
    ("over_custom_payload_cap", "max_payload 16: a publish with a 17-byte payload, all bytes present.",
     frame_with_payload("publish", bytes(17), "a"), "frame_too_large", {"max_payload": 16}),
    ("too_many_frames", "max_frames 2: three pings in one message.",
     PING * 3, "frame_too_large", {"max_frames": 2}),
]


def body_frame(kind, body, ident=0, name=""):
    return encode_frame({"kind": kind, "id": ident, "name": name, "payload": body})


HELLO_OK = encode_body("hello", {"min_version": 1, "max_version": 1, "role": "frontend",
                                 "name": "x", "token": "", "resume_session": ""})
WELCOME_OK = encode_body("welcome", {"version": 1, "session_id": "s", "router_id": "r",
                                     "heartbeat_ms": 1, "max_payload": 2,
                                     "max_subscriptions": 3, "resumed": False})
LIST_OK = encode_body("service_list", {"services": [
    {"name": "svc", "instances": 1, "methods": [{"name": "m", "kind": "unary"}]}]})

BAD_BODIES = [
    ("hello_short", "hello body of 4 bytes (the fixed part alone is 5).",
     "hello", HELLO_OK[:4]),
    ("hello_empty", "hello with no body at all.", "hello", b""),
    ("hello_role_0", "hello with role 0.", "hello", HELLO_OK[:4] + bytes([0]) + HELLO_OK[5:]),
    ("hello_bad_role", "hello with role 3.", "hello", HELLO_OK[:4] + bytes([3]) + HELLO_OK[5:]),
    ("hello_string_past_end", "hello whose name length says 100 but 1 byte follows.",
     "hello", HELLO_OK[:5] + struct.pack("<H", 100) + b"x"),
    ("hello_trailing_byte", "A valid hello body plus one byte.", "hello", HELLO_OK + b"\x00"),
    ("hello_name_cut_in_a_character", "hello whose name ends in the first two bytes of a three-byte character.",
     "hello", HELLO_OK[:5] + struct.pack("<H", 3) + b"a\xe5\xb7" + struct.pack("<HH", 0, 0)),
    ("hello_name_overlong", "hello whose name is an overlong encoding of '/'.",
     "hello", HELLO_OK[:5] + struct.pack("<H", 2) + b"\xc0\xaf" + struct.pack("<HH", 0, 0)),
    ("service_list_name_surrogate", "One service whose name holds an encoded surrogate (U+D800).",
     "service_list", struct.pack("<H", 1) + struct.pack("<H", 3) + b"\xed\xa0\x80"
     + struct.pack("<HH", 1, 0)),
    ("welcome_short", "welcome cut before its last field.", "welcome", WELCOME_OK[:-1]),
    ("welcome_resumed_2", "welcome with resumed = 2 (only 0 and 1 are defined).",
     "welcome", WELCOME_OK[:-1] + bytes([2])),
    ("welcome_trailing_byte", "A valid welcome body plus one byte.", "welcome", WELCOME_OK + b"\x00"),
    ("register_empty", "register_service with no body (the count needs 2 bytes).",
     "register_service", b""),
    ("register_count_larger_than_bytes", "Count 5, one method present.",
     "register_service", struct.pack("<H", 5) + put_str("lookup") + bytes([1])),
    ("routers_count_larger_than_bytes", "Count 3, one router present.",
     "routers", struct.pack("<H", 3) + put_str("r-2b7c") + put_str("tcp://10.0.0.12:7071")),
    ("routers_endpoint_missing", "A router id without its endpoint.", "routers",
     struct.pack("<H", 1) + put_str("r-2b7c")),
    ("register_count_65535", "Count 65535 and nothing else: rejected before anything is reserved.",
     "register_service", struct.pack("<H", 0xFFFF)),
    ("register_bad_method_kind", "Method kind 3.",
     "register_service", struct.pack("<H", 1) + put_str("lookup") + bytes([3])),
    ("register_method_kind_0", "Method kind 0.",
     "register_service", struct.pack("<H", 1) + put_str("lookup") + bytes([0])),
    ("presence_list_more_listed_than_counted", "Count 1, two members listed.",
     "presence_list", struct.pack("<IH", 1, 2) + put_member({"address": "a", "subject": "", "name": ""}) * 2),
    ("presence_list_count_larger_than_bytes", "Three members listed, one present.",
     "presence_list", struct.pack("<IH", 3, 3) + put_member({"address": "a", "subject": "", "name": ""})),
    ("presence_list_short", "presence_list cut inside its count.", "presence_list", struct.pack("<H", 1)),
    ("join_name_missing", "A join whose member lacks its client name.", "join", put_str("r-1.1") + put_str("")),
    ("leave_trailing_byte", "A leave whose member is followed by one byte.",
     "leave", put_member({"address": "r-1.1", "subject": "", "name": ""}) + b"\x00"),
    ("service_list_trailing_byte", "A valid service_list plus one byte.",
     "service_list", LIST_OK + b"\x00"),
    ("service_list_count_larger_than_bytes", "Service count 2, one service present.",
     "service_list", struct.pack("<H", 2) + LIST_OK[2:]),
    ("service_list_method_count_larger_than_bytes", "One service whose method count says 4.",
     "service_list", struct.pack("<H", 1) + put_str("svc") + struct.pack("<HH", 1, 4)
     + put_str("m") + bytes([1])),
    ("service_list_bad_method_kind", "One service with a method of kind 9.",
     "service_list", LIST_OK[:-1] + bytes([9])),
]


# Publish payloads whose options block does not parse (flags, payload).
BAD_PUBLISH_OPTIONS = [
    ("publish_key_empty", "Flag idempotency_key with a key of length 0.", IDEMPOTENCY_KEY, b"\x00msg"),
    ("publish_key_past_end", "A key length of 9 with 3 bytes after it.", IDEMPOTENCY_KEY, b"\x09abc"),
    ("publish_key_with_space", "A key holding a space (keys are printable ASCII 0x21..0x7E).",
     IDEMPOTENCY_KEY, b"\x03a bmsg"),
    ("publish_no_key_length", "Flag idempotency_key on an empty payload.", IDEMPOTENCY_KEY, b""),
    ("publish_ttl_zero", "A ttl of 0 seconds.", TTL, struct.pack("<I", 0) + b"msg"),
    ("publish_ttl_short", "Flag ttl with 3 bytes of payload.", TTL, b"\x3c\x00\x00"),
    ("publish_key_then_short_ttl", "Both flags: a valid key, then 2 bytes of ttl.",
     IDEMPOTENCY_KEY | TTL, b"\x01k\x3c\x00"),
]


def build_good():
    vectors = []
    for name, description, frames in GOOD:
        data = b"".join(encode_frame(f) for f in frames)
        decoded = decode_batch(data)
        expected = [full_fields(f) for f in frames]
        assert len(decoded) == len(expected), name
        for got, want in zip(decoded, expected):
            if got["kind"] in BODY_KINDS:
                got["body"] = decode_body(got["kind"], got["payload"])
            if has_options(got):
                got["options"] = decode_publish_options(got["flags"], got["payload"])
            assert got == want, (name, got, want)
        vectors.append({"name": name, "description": description, "hex": data.hex(),
                        "frames": [to_json(f) for f in decoded]})
    covered = {f["kind"] for v in vectors for f in v["frames"]}
    assert covered == set(KINDS), set(KINDS) - covered
    return vectors


def check_bad(name, data, error, limits):
    try:
        decode_batch(data, **limits)
    except DecodeError as e:
        assert e.code == error, (name, e.code, error)
        return e.frames_before
    raise AssertionError(f"{name} decodes")


def build_bad():
    vectors = []
    for name, description, data, error in BAD_FRAMES:
        before = check_bad(name, data, error, {})
        vectors.append({"name": name, "description": description, "stage": "batch",
                        "hex": data.hex(), "error": error, "frames_before_error": before})
    for name, description, data, error, limits in BAD_WITH_LIMITS:
        before = check_bad(name, data, error, limits)
        vectors.append({"name": name, "description": description, "stage": "batch",
                        "hex": data.hex(), "limits": limits, "error": error,
                        "frames_before_error": before})
    for name, description, kind, body in BAD_BODIES:
        data = body_frame(kind, body, ident=1, name={"register_service": "inventory", "join": "a.b",
                                                     "leave": "a.b"}.get(kind, ""))
        (f,) = decode_batch(data)
        try:
            decode_body(kind, f["payload"])
        except DecodeError as e:
            assert e.code == "malformed_body", (name, e.code)
        else:
            raise AssertionError(f"{name} body decodes")
        vectors.append({"name": name, "description": description, "stage": "body",
                        "hex": data.hex(), "error": "malformed_body"})
    for name, description, flags, payload in BAD_PUBLISH_OPTIONS:
        data = encode_frame({"kind": "publish", "flags": flags, "name": "orders.new", "payload": payload})
        (f,) = decode_batch(data)
        try:
            decode_publish_options(f["flags"], f["payload"])
        except DecodeError as e:
            assert e.code == "malformed_body", (name, e.code)
        else:
            raise AssertionError(f"{name} options decode")
        vectors.append({"name": name, "description": description, "stage": "body",
                        "hex": data.hex(), "error": "malformed_body"})
    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names))
    return vectors


def write(path, vectors):
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        json.dump({"protocol_version": VERSION, "generator": "tests/vectors/generate.py",
                   "vectors": vectors}, out, indent=2, ensure_ascii=False)
        out.write("\n")


def main():
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    write(out_dir / "frames.json", build_good())
    write(out_dir / "bad_frames.json", build_bad())


if __name__ == "__main__":
    main()
