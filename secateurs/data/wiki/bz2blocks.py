"""Decompress one bz2 stream on several cores, block by block, as lbzip2 does.

The usual Wikipedia download is a single-stream `.xml.bz2`, and libbzip2 decompresses it
at about the speed our parser cleans it: one decompressing thread alone bounds the run.
But a bz2 stream is a 4-byte header followed by independent blocks (at most 900 kB of input
each), every block opening with a 48-bit magic at any *bit* offset, and the stream closing
with a 48-bit end-of-stream magic and a combined CRC. Cutting the raw bits at those magics
and giving each block its own header and trailer makes it a complete one-block stream:
its combined CRC is its own block CRC. `bz2.decompress` releases the GIL, so a thread pool
decompresses several blocks at once while the caller parses. Concatenated streams
(multistream files) split the same way: bits between an end-of-stream magic and the next
block magic (CRC, padding, the next header) belong to no block.

A block magic can also occur by chance inside compressed data (about once per 35 TB). A
piece cut at such a false magic fails its CRC; it is then joined with the piece after it
and decoded again, so the output is always the stream's own.
"""

from __future__ import annotations

import bz2
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Iterator

BLOCK_MAGIC = 0x314159265359
END_MAGIC = 0x177245385090
MASK48 = (1 << 48) - 1
READ = 1 << 22          # raw bytes scanned at a time
MAX_JOINS = 3           # false magics tolerated in a row before the data counts as corrupt
DECODE_ERRORS = (OSError, ValueError, EOFError)
TRUNCATED = "bz2 stream ends before its end-of-stream marker"


class BlockError(ValueError):
    """A block that does not decode even joined with the next ones: `byte` is where its raw
    bits start in the file. `truncated` when the file ends inside that block."""

    def __init__(self, byte: int, what: str, truncated: bool = False):
        self.byte, self.what, self.truncated = byte, what, truncated
        super().__init__(f"{what} at byte offset {byte}")


@dataclass
class Piece:
    """The raw bits [start_bit, end_bit) of one block, magic included, as an integer.
    `closed` is False for the last piece of a file that ends without an end magic."""
    bits: int
    start_bit: int
    end_bit: int
    closed: bool = True

    def joined(self, other: "Piece") -> "Piece":
        width = other.end_bit - other.start_bit
        return Piece((self.bits << width) | other.bits, self.start_bit, other.end_bit,
                     other.closed)

    def as_stream(self) -> bytes:
        """A complete bz2 stream of this one block: header, block, end magic, CRC, padding.
        Level 9 in the header admits every block size."""
        width = self.end_bit - self.start_bit
        crc = (self.bits >> (width - 80)) & 0xFFFFFFFF
        value = (((self.bits << 48) | END_MAGIC) << 32) | crc
        total = width + 80
        pad = -total % 8
        return b"BZh9" + (value << pad).to_bytes((total + pad) // 8, "big")


def _patterns(magic: int) -> list[tuple[int, bytes]]:
    """For each bit shift s of the magic inside a byte, the 5 bytes it fully covers: the
    magic at bit s of byte i covers bytes i+1..i+5 when s > 0, bytes i..i+4 when s = 0."""
    out = [(0, magic.to_bytes(6, "big")[:5])]
    for s in range(1, 8):
        window = magic << (8 - s)                # the magic inside a 56-bit (7-byte) window
        out.append((s, ((window >> 8) & ((1 << 40) - 1)).to_bytes(5, "big")))
    return out


PATTERNS = [(magic, s, pat) for magic in (BLOCK_MAGIC, END_MAGIC) for s, pat in _patterns(magic)]


def find_magics(buf: bytes, lo_byte: int) -> list[tuple[int, int]]:
    """(bit offset in `buf`, magic) of every block or end magic whose 7-byte window starts
    at or after byte `lo_byte` and lies wholly inside `buf`, in order."""
    found = set()
    for magic, s, pat in PATTERNS:
        first = lo_byte + (1 if s else 0)
        i = buf.find(pat, first)
        while i != -1:
            byte = i - 1 if s else i
            window = buf[byte:byte + 7]
            if len(window) < 7:
                break
            if (int.from_bytes(window, "big") >> (8 - s)) & MASK48 == magic:
                found.add((byte * 8 + s, magic))
            i = buf.find(pat, i + 1)
    return sorted(found)


def _bits(buf: bytes, start_bit: int, end_bit: int) -> int:
    """The bits [start_bit, end_bit) of `buf` as an integer."""
    first, last = start_bit // 8, (end_bit + 7) // 8
    value = int.from_bytes(buf[first:last], "big")
    return (value >> (last * 8 - end_bit)) & ((1 << (end_bit - start_bit)) - 1)


def split_blocks(f: BinaryIO, start: int = 0) -> Iterator[Piece]:
    """Every block of the bz2 data in `f` (from byte `start` on) as a `Piece`, in order,
    with bit offsets counted from byte `start`. Reads `READ` bytes at a time; memory holds
    one read plus at most one block."""
    buf, base, lo = b"", 0, 0      # base: file bit of buf[0]; lo: first byte to scan from
    open_block: int | None = None  # bit offset (in buf) of the block being cut
    end_magic: int | None = None   # file bit of the last end magic, while nothing follows it
    while True:
        raw = f.read(READ)
        buf += raw
        for bit, magic in find_magics(buf, lo):
            if open_block is not None:
                yield Piece(_bits(buf, open_block, bit), base + open_block, base + bit)
            open_block = bit if magic == BLOCK_MAGIC else None
            end_magic = base + bit if magic == END_MAGIC else None
        lo = max(lo, len(buf) - 6)
        keep = open_block // 8 if open_block is not None else lo
        buf, base, lo = buf[keep:], base + keep * 8, lo - keep
        if open_block is not None:
            open_block -= keep * 8
        if not raw:
            break
    if open_block is not None:
        yield Piece(_bits(buf, open_block, len(buf) * 8), base + open_block, base + len(buf) * 8,
                    closed=False)
    elif end_magic is None or base + len(buf) * 8 < end_magic + 80:
        yield Piece(0, base, base, closed=False)   # a cut-off header, end magic or CRC


def _decode(piece: Piece) -> bytes:
    return bz2.decompress(piece.as_stream())


def default_threads() -> int:
    """Decoder threads: the CPUs this process may use (a SLURM allocation narrows them)
    less one for the parser that consumes the output, at least one, at most 4. libbzip2
    decodes at about twice the speed our parser cleans, so more threads than that only
    take CPU from the parser."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus - 1))


def decompress_blocks(f: BinaryIO, start: int = 0, threads: int | None = None
                      ) -> Iterator[tuple[bytes, int]]:
    """The decompressed data of the bz2 data in `f`, block by block and in order, with the
    raw byte offset (from `start`) reached after each block. Raises `BlockError` for data
    that does not decode, `truncated` when the file ends before an end magic."""
    for data, end_bit, closed in decode_pieces(split_blocks(f, start), threads):
        yield data, start + (end_bit + 7) // 8
        if not closed:
            raise BlockError(start + end_bit // 8, TRUNCATED, truncated=True)


def decode_pieces(pieces: Iterator[Piece], threads: int | None = None
                  ) -> Iterator[tuple[bytes, int, bool]]:
    """(data, end bit, closed) of each piece in order, decoded by `threads` threads with
    two pieces per thread (at least four) in flight; a piece that fails is joined with the
    next."""
    threads = threads or default_threads()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bz2-block") as pool:
        pending: deque[tuple[Piece, Future]] = deque()

        def submit() -> bool:
            piece = next(pieces, None)
            if piece is not None:
                pending.append((piece, pool.submit(_decode, piece)))
            return piece is not None

        while len(pending) < max(4, 2 * threads) and submit():
            pass
        while pending:
            piece, future = pending.popleft()
            data, piece = _result(piece, future, pending, submit)
            submit()
            yield data, piece.end_bit, piece.closed


def _result(piece: Piece, future: Future, pending: deque, submit) -> tuple[bytes, Piece]:
    """The decoded block, joining it with following pieces while a false magic split it.
    (An empty or cut-off piece fails to decode too: its stream has no CRC to read.)"""
    try:
        return future.result(), piece
    except DECODE_ERRORS as e:
        error = e
    for _ in range(MAX_JOINS):
        if not piece.closed or not (pending or submit()):
            break
        piece = piece.joined(pending.popleft()[0])
        try:
            return _decode(piece), piece
        except DECODE_ERRORS:
            pass
    byte = piece.start_bit // 8
    if not piece.closed:
        raise BlockError(byte, TRUNCATED, truncated=True)
    raise BlockError(byte, f"bad bz2 data ({error})")
