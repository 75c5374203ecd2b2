#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<harness>/.

The seeds are committed; this script documents how they were made and can
rewrite them (python3 tests/fuzz/gen_seeds.py).  It encodes zps.Envelope
(proto/zps.proto) by hand so it needs no protobuf package.  Files named
crash-* in the corpus directories are regression inputs and are left alone.
"""
import gzip
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def msg(**fields_by_num):
    """msg(f1=..., f2=b'..'): ints are varints, bytes/str are length-delimited."""
    out = b""
    for name, v in sorted(fields_by_num.items(), key=lambda kv: int(kv[0][1:])):
        num = int(name[1:])
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, int):
            out += field(num, 0, v)
        else:
            out += field(num, 2, v.encode() if isinstance(v, str) else v)
    return out


# MsgType values and body field numbers (proto/zps.proto)
HELLO, HELLO_REPLY, PULL, PULL_REPLY, PUSH, PUSH_ACK, ERROR, STATS = 1, 2, 3, 4, 5, 6, 7, 8
STATS_REPLY, SHUTDOWN, SHUTDOWN_ACK, CLOCK, CLOCK_ACK, HEARTBEAT = 9, 10, 11, 12, 13, 14
BODY = {HELLO: 10, HELLO_REPLY: 11, PULL: 12, PULL_REPLY: 13, PUSH: 14, PUSH_ACK: 15,
        ERROR: 16, STATS: 17, STATS_REPLY: 18, SHUTDOWN: 19, CLOCK: 20, HEARTBEAT: 21}
WORKER, TOOL = 2, 3


def envelope(mtype, body=b"", version=1, role=WORKER, rank=0, rid=7, body_field=None):
    e = msg(f1=version, f2=role, f3=rank, f4=rid, f5=mtype)
    bf = body_field if body_field is not None else BODY.get(mtype)
    if bf is not None:
        e += field(bf, 2, body)
    return e


def keys_frame(keys):
    out, prev = b"", None
    for k in keys:
        out += varint(k if prev is None else k - prev - 1)
        prev = k
    return out


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def raw_frames(frames, flags=0):
    """fuzz_msg raw layout: flags byte, then [u16 len][bytes] per frame."""
    out = bytes([flags])
    for fr in frames:
        out += struct.pack("<H", len(fr)) + fr
    return out


def server_input(target, frames):
    """fuzz_server layout: target byte, then [u16 len][bytes] per frame."""
    out = bytes([target])
    for fr in frames:
        out += struct.pack("<H", len(fr)) + fr
    return out


def messages():
    """(name, frames) of protocol messages, valid and not."""
    k5 = [1, 2, 3, 10, 1000]
    yield "hello", [envelope(HELLO, msg(f1="0.1.0"))]
    yield "stats", [envelope(STATS, b"", role=TOOL)]
    yield "pull-5", [envelope(PULL, msg(f1=0, f2=5)), keys_frame(k5)]
    yield "pull-fp16", [envelope(PULL, msg(f1=0, f2=5, f5=1)), keys_frame(k5)]
    yield "pull-int8", [envelope(PULL, msg(f1=0, f2=5, f5=2)), keys_frame(k5)]
    yield "pull-sig", [envelope(PULL, msg(f1=0, f2=5, f4=0x1234567)), b""]
    yield "push-5", [envelope(PUSH, msg(f1=0, f2=5, f3=1, f4=1)), keys_frame(k5),
                     f32([0.5, -1, 2, 0.25, 8])]
    yield "push-fp16", [envelope(PUSH, msg(f1=0, f2=3, f3=1, f9=1)), keys_frame([4, 5, 6]),
                        struct.pack("<3H", 0x3C00, 0xBC00, 0x0001)]
    yield "push-int8", [envelope(PUSH, msg(f1=0, f2=3, f3=1, f9=2)), keys_frame([4, 5, 6]),
                        f32([0.01]) + bytes([1, 0x81, 127])]
    yield "push-tick", [envelope(PUSH, msg(f1=0, f2=2, f3=1, f5=1, f6=True, f7=10, f8=True)),
                        keys_frame([9, 99]), f32([1, 1])]
    yield "push-dim2", [envelope(PUSH, msg(f1=0, f2=2, f3=2)), keys_frame([9, 99]),
                        f32([1, 2, 3, 4])]
    # exactly-once pushes: (rank, nonce f12, seq f4), acked f13, progress f14/f15
    yield "push-nonce", [envelope(PUSH, msg(f1=0, f2=1, f3=1, f4=1, f12=0xABC, f13=0, f14=1,
                                            f15=100)), keys_frame([5]), f32([1])]
    yield "push-nonce-lost", [envelope(PUSH, msg(f1=0, f2=1, f3=1, f4=9, f12=0xABC, f13=7)),
                              keys_frame([5]), f32([1])]
    yield "push-nonce-new", [envelope(PUSH, msg(f1=0, f2=1, f3=1, f4=1, f12=0xDEF), rank=3),
                             keys_frame([6]), f32([2])]
    yield "clock", [envelope(CLOCK, msg(f1=3))]
    yield "clock-done", [envelope(CLOCK, msg(f1=3, f2=True))]
    yield "heartbeat", [envelope(HEARTBEAT, msg(f1=2))]
    # invalid
    yield "bad-version", [envelope(HELLO, msg(f1="x"), version=2)]
    yield "bad-type-body", [envelope(PULL, msg(f1=0, f2=1), body_field=14), keys_frame([1])]
    yield "bad-envelope", [b"\x0a\xff\xff"]
    yield "bad-too-many-frames", [envelope(STATS), b"a", b"b", b"c"]
    yield "bad-keys-unsorted", [envelope(PULL, msg(f1=0, f2=2)), bytes([5, 0x80])]
    yield "bad-push-nan", [envelope(PUSH, msg(f1=0, f2=1, f3=1)), keys_frame([3]),
                           struct.pack("<I", 0x7FC00000)]
    yield "bad-push-len", [envelope(PUSH, msg(f1=0, f2=2, f3=1)), keys_frame([3, 4]), f32([1])]
    yield "bad-table", [envelope(PULL, msg(f1=5, f2=1)), keys_frame([3])]
    yield "bad-reply-type", [envelope(PUSH_ACK, msg(f2=1))]


def write(dirname, name, data):
    d = os.path.join(HERE, "corpus", dirname)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def keys_seeds():
    """fuzz_keys: a mode byte (0: n = number of varints), then the frame."""
    w = lambda n, b: write("keys", n, b)
    w("dense-3", b"\x00\x00\x00\x00")
    w("single-300", b"\x00\xac\x02")
    w("two-5-1000", b"\x00\x05\xe2\x07")
    w("dense-20", b"\x00" + bytes(range(20)))
    w("max-key", b"\x00" + b"\xff" * 9 + b"\x01")
    w("max-minus1-then-max", b"\x00\xfe" + b"\xff" * 8 + b"\x01\x00")
    w("bad-overflow", b"\x00\xfe" + b"\xff" * 8 + b"\x01\x00\x00")
    w("bad-overlong", b"\x00" + b"\xff" * 9 + b"\x02")
    w("bad-truncated", b"\x02\x80\x80")
    w("bad-trailing", b"\x01\x01\x02\x03")
    w("nonminimal", b"\x00\x80\x00\x81\x80\x00")
    w("zero-keys", b"\x03\x00\x00")
    w("raw-sorted", b"\x04" + struct.pack("<3Q", 1, 16, 1 << 56))
    rnd = random.Random(3)
    w("hashed-100", b"\x00" + keys_frame(sorted(rnd.sample(range(1 << 24), 100))))


def vcodec_seeds():
    """fuzz_vcodec: codec byte, mode byte, u64 rng seed, u16 n, payload."""
    def w(name, cb, mode, payload, seed=12345, nx=0):
        write("vcodec", name, bytes([cb, mode]) + struct.pack("<QH", seed, nx) + payload)
    rnd = random.Random(5)
    fl = struct.pack("<8f", 0.0, -0.0, 1.0, -2.5, 65504.0, 70000.0, 1e-6, -3e-8)
    w("f32-8", 0, 0, fl)
    w("f16-8", 1, 0, struct.pack("<8H", 0x0000, 0x8000, 0x3C00, 0xC100, 0x7BFF, 0x0001, 0x03FF, 0x0400))
    w("f16-inf-nan", 1, 0, struct.pack("<4H", 0x7C00, 0xFC00, 0x7E00, 0x7C01))
    blk1 = struct.pack("<f", 0.01) + bytes(rnd.randrange(256) for _ in range(64))
    blk2 = struct.pack("<f", 2.0) + bytes([1, 2, 3, 0x81, 0x80, 0x7F])
    w("int8-70", 2, 0, blk1 + blk2)
    w("int8-neg-scale", 2, 0, struct.pack("<f", -1.0) + bytes([1, 2, 3]))
    w("int8-nan-scale", 2, 0, struct.pack("<I", 0x7FC00000) + bytes([1]))
    w("int8-maxscale", 2, 0, struct.pack("<f", 3.4028234e38 / 127) + bytes([127, 0x81, 5]))
    w("bad-length-f32", 0, 1, fl[:7])
    w("unknown-codec", 3 | (7 << 2), 0, fl)
    w("explicit-n", 1, 3, fl, nx=16)
    xs = [1.4e-45, 1e-40, 2**-14, 2**-15 * 1.5, 2**-25, 2**-24 * 1.5, 3.4e38, -3.4e38,
          1.0000001, 65519.0, 65520.0, 0.1]
    w("enc-extremes", 0, 4, struct.pack("<%df" % len(xs), *xs), seed=0)
    vals = [rnd.gauss(0, 1) * 10 ** rnd.randrange(-40, 30) for _ in range(200)]
    w("enc-random-200", 0, 0, struct.pack("<200f", *vals), seed=99)


CRITEO_INTS = ["1", "", "5", "0", "-1", "100", "2", "3", "", "7", "12", "1000000",
               "9223372036854775807"]
CRITEO_CATS = ["68fd1e64", "80e26c9b", "fb936136", "7b4723c4", "25c83c98", "7e0ccccf",
               "de7995b8", "1f89b562", "a73ee510", "a8cd5504", "b2cb9c98", "37c9c164",
               "2824a5f6", "1adce6ef", "8ba8b39a", "891b62e7", "e5ba7672", "f54016b9",
               "21ddcdc9", "b1252a9d", "07b5194c", "", "3a171ecb", "c5c50484", "e8b83407",
               "9727dd16"]


def data_texts():
    line1 = "\t".join(["1"] + CRITEO_INTS + CRITEO_CATS)
    line2 = "\t".join(["0"] + [""] * 39)
    yield "libsvm-basic", "1 3:0.5 10:1\n0 1:2 7:-1.5e-3\n-1 2:1 qid:3 5:0.25 # comment\n+1 4:1e2 8:0x1p3\n"
    yield "libsvm-crlf-comments", "# header comment\r\n\r\n1 1:1 2:2\r\n   \r\n0 3:3\t4:4 \r\n# end\r\n"
    yield "libsvm-class", "3 1:1\n0 2:2\n12 5:1\n16777216 1:1\n"
    yield "libsvm-unsorted", "1 9:1 3:2 5:3\n0 100:1 2:1 50:1 1:1\n"
    yield "libsvm-no-newline", "1 1:1\n0 2:.5"
    yield "libsvm-big-ids", "1 18446744073709551614:1 1:2\n0 12345678901234567890:3\n"
    yield "bad-libsvm-dup", "1 1:1\n1 3:1 5:2 3:2\n0 2:1\n"
    yield "bad-libsvm-id", "1 1:1\n1 x:1\n0 18446744073709551616:1\n1 18446744073709551615:1\n"
    yield "bad-libsvm-value", "1 3:nan\n1 4:1e50\n0 5:\n1 6:1.5.5\n1 7:inf\n"
    yield "bad-libsvm-label", "2 1:1\n1:1 2:2\n0.5 1:1\nyes 1:1\n"
    yield "bad-libsvm-token", "1 3 4:1\n1 :5\n"
    yield "criteo-basic", line1 + "\n" + line2 + "\n"
    yield "criteo-crlf", line1 + "\r\n" + line2 + "\r\n"
    yield "bad-criteo-fields", ("\t".join(["1"] + CRITEO_INTS + CRITEO_CATS[:-1]) + "\n" +
                                line1 + "\textra\n")
    yield "bad-criteo-int", ("\t".join(["0", "abc"] + CRITEO_INTS[1:] + CRITEO_CATS) + "\n" +
                             "\t".join(["0", "99999999999999999999"] + CRITEO_INTS[1:] + CRITEO_CATS) + "\n")
    yield "mixed-formats", "1 1:1\n" + line1 + "\n"
    yield "empty", ""
    yield "comments-only", "# nothing\n\n# here\n"


def data_seeds():
    texts = dict(data_texts())
    for name, text in texts.items():
        write("data", name, text.encode())
    # fuzz_data_gz: text inputs (compressed by the harness) and raw gzip files
    for name in ("libsvm-basic", "libsvm-crlf-comments", "criteo-basic", "bad-libsvm-dup",
                 "bad-criteo-fields", "libsvm-no-newline", "empty"):
        write("data_gz", name, texts[name].encode())
    g = gzip.compress(texts["libsvm-basic"].encode(), mtime=0)
    write("data_gz", "gz-valid", g)
    write("data_gz", "gz-truncated", g[:-5])
    bad = bytearray(g)
    bad[-6] ^= 0xFF  # CRC mismatch
    write("data_gz", "gz-bad-crc", bytes(bad))
    write("data_gz", "gz-two-members", gzip.compress(b"1 1:1\n0 2:", mtime=0) +
          gzip.compress(b"2\n1 3:3\n", mtime=0))
    write("data_gz", "gz-trailing-garbage", g + b"garbage\n")
    write("data_gz", "gz-criteo-bad", gzip.compress(texts["bad-criteo-int"].encode(), mtime=0))
    # a line longer than the reader's 1 MiB buffer
    long = b"1 1:1 # " + b"x" * (1200 << 10) + b"\n0 2:1\n1 3:1\n"
    write("data_gz", "gz-long-line", gzip.compress(long, 9, mtime=0))


def main():
    keys_seeds()
    vcodec_seeds()
    data_seeds()
    for name, frames in messages():
        write("msg", name, raw_frames(frames))
        write("server", name, server_input(0, frames))
    # fuzz_msg structured mode (flags bit 0): version byte, role, rank, request
    # id, type, body choice, fields..., frame shape
    write("msg", "structured-push", bytes([3, 0, 2, 0, 7, PUSH, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0,
                                           0, 0, 0, 7]) + bytes(range(40)))
    write("msg", "structured-pull-reply", bytes([3, 0, 1, 0, 1, PULL_REPLY, 0, 0, 3, 2, 0, 5]) +
          bytes(range(40)))
    # fuzz_server: the same messages to the ssp (1) and bsp (2) servers, and
    # to the 2-table server with the key cache (3)
    for name, frames in messages():
        if name.startswith(("push", "pull", "clock")):
            write("server", name + "-ssp", server_input(1, frames))
            write("server", name + "-bsp", server_input(2, frames))
    # key caching (flags 0x04: fix the signature, 0x08: reuse it), table 1 of
    # server 0; then the ownership check of server 3 (rank 1 of 2)
    write("server", "keycache-put", server_input(0 | 4, [
        envelope(PULL, msg(f1=1, f2=5, f4=1)), keys_frame([1, 2, 3, 10, 1000])]))
    write("server", "keycache-hit-pull", server_input(0 | 8, [
        envelope(PULL, msg(f1=1, f2=5, f4=1)), b""]))
    write("server", "keycache-hit-push", server_input(0 | 8, [
        envelope(PUSH, msg(f1=1, f2=5, f3=4, f10=1)), b"", f32([0.5] * 20)]))
    write("server", "keycache-bad-sig", server_input(0, [
        envelope(PULL, msg(f1=1, f2=5, f4=77)), keys_frame([1, 2, 3, 10, 1000])]))
    write("server", "foreign-key", server_input(3, [
        envelope(PULL, msg(f1=1, f2=5)), keys_frame([1, 2, 3, 10, 1000])]))


if __name__ == "__main__":
    main()
