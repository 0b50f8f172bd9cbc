"""Block-parallel bz2 decoding gives exactly what libbzip2 gives, or fails like it.

Inputs are real dumps from ../shared/real-data where present (skipped otherwise) and data
compressed here at both block sizes, one stream and several streams concatenated."""

from __future__ import annotations

import bz2
import io
import random
import pytest

from secateurs.data.wiki.bz2blocks import (BlockError, Piece, decode_pieces, decompress_blocks,
                                           split_blocks)
from secateurs.data.wiki.dump import TruncatedDumpError, iter_dump, Page



def _decoded(raw: bytes, threads: int = 2) -> bytes:
    return b"".join(data for data, _ in decompress_blocks(io.BytesIO(raw), threads=threads))


@pytest.fixture(scope="module")
def text() -> bytes:
    """About 3 MB of wiki-like text: several 100 kB blocks, a few 900 kB blocks."""
    rng = random.Random(7)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(5000)]
    lines = (b" ".join(rng.choices(words, k=rng.randint(5, 30))) for _ in range(60000))
    return b"\n".join(lines)


@pytest.mark.parametrize("name", ["minidump-en-wiki.xml.bz2", "minidump-zh-wiki.xml.bz2"])
def test_real_single_stream_dumps_decode_as_libbzip2_does(real_data, name):
    raw = (real_data / "dbpedia+extraction-framework" / name).read_bytes()
    assert _decoded(raw) == bz2.decompress(raw)


@pytest.mark.parametrize("level", [1, 9])
def test_one_stream_of_many_blocks(text, level):
    raw = bz2.compress(text, level)
    blocks = list(split_blocks(io.BytesIO(raw)))
    assert len(blocks) >= len(text) // (level * 100_000) > 1
    assert [b.start_bit for b in blocks[1:]] == [b.end_bit for b in blocks[:-1]]
    assert _decoded(raw, threads=3) == text


def test_concatenated_streams_including_an_empty_one(text):
    cuts = [0, 123_456, 1_500_000, 1_500_000, len(text)]
    raw = b"".join(bz2.compress(text[a:b], 1) for a, b in zip(cuts, cuts[1:]))
    assert _decoded(raw) == text


def test_offsets_reach_the_end_of_the_file(text):
    raw = bz2.compress(text, 1)
    offsets = [pos for _, pos in decompress_blocks(io.BytesIO(raw))]
    assert offsets == sorted(offsets) and len(raw) - 10 <= offsets[-1] <= len(raw)


def test_a_false_magic_inside_a_block_is_joined_back(text):
    """A piece cut where the magic occurred by chance fails alone and decodes joined."""
    pieces = list(split_blocks(io.BytesIO(bz2.compress(text, 1))))
    victim = pieces[3]
    cut = victim.start_bit + (victim.end_bit - victim.start_bit) // 3
    tail_width = victim.end_bit - cut
    head = Piece(victim.bits >> tail_width, victim.start_bit, cut)
    tail = Piece(victim.bits & ((1 << tail_width) - 1), cut, victim.end_bit)
    assert head.joined(tail).bits == victim.bits
    split = pieces[:3] + [head, tail] + pieces[4:]
    decoded = list(decode_pieces(iter(split), threads=2))
    assert b"".join(d for d, _, _ in decoded) == text
    assert len(decoded) == len(pieces)


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.9999999])
def test_a_cut_file_yields_its_whole_blocks_then_stops_as_truncated(text, keep):
    raw = bz2.compress(text, 1)
    cut = raw[: int(len(raw) * keep)] if keep < 0.99999 else raw[:-2]   # CRC cut short
    got = []
    with pytest.raises(BlockError) as e:
        for data, _ in decompress_blocks(io.BytesIO(cut)):
            got.append(data)
    assert e.value.truncated
    assert text.startswith(b"".join(got))


def test_corrupt_data_is_not_called_truncated(text):
    raw = bytearray(bz2.compress(text, 1))
    raw[len(raw) // 2] ^= 0xFF
    with pytest.raises(BlockError, match="bad bz2 data") as e:
        _decoded(bytes(raw))
    assert not e.value.truncated and 0 < e.value.byte < len(raw)


def test_a_header_alone_is_truncated():
    with pytest.raises(BlockError) as e:
        _decoded(b"BZh9")
    assert e.value.truncated


def test_iter_dump_reads_a_single_stream_bz2_block_parallel_like_plain_xml(tmp_path):
    """The threaded reader (what extraction uses at any process count for a file without
    a multistream index) returns the same pages from .xml.bz2 as from .xml."""
    pages = "".join(f"<page><title>T{i}</title><ns>0</ns><id>{i}</id><revision><text>"
                    f"{'正文 ' * (i % 50 + 1)}{i}</text></revision></page>\n" for i in range(4000))
    xml = f"<mediawiki><siteinfo><sitename>W</sitename></siteinfo>{pages}</mediawiki>".encode()
    (tmp_path / "d.xml").write_bytes(xml)
    (tmp_path / "d.xml.bz2").write_bytes(bz2.compress(xml, 1))
    (tmp_path / "cut.xml.bz2").write_bytes(bz2.compress(xml, 1)[:-5000])

    def titles(name, **kw):
        return [p.title for p in iter_dump(tmp_path / name, threaded=True, **kw)
                if isinstance(p, Page)]
    assert titles("d.xml.bz2") == titles("d.xml") and len(titles("d.xml")) == 4000
    with pytest.raises(TruncatedDumpError, match=r"cut\.xml\.bz2.*byte offset \d+"):
        titles("cut.xml.bz2")
    kept = titles("cut.xml.bz2", accept_unterminated=True)
    assert 0 < len(kept) < 4000 and kept == titles("d.xml")[:len(kept)]
