"""dal.dynamo.pack: snapshots and stored responses compressed with a preset dictionary."""

from __future__ import annotations

import json
import zlib

from chalicelib.dal.dynamo import PACK_DICTIONARY, PACK_DICTIONARY_ID, pack, unpack


def _charge() -> dict:
    lines = PACK_DICTIONARY.read_text().splitlines()
    charge = next(json.loads(line) for line in lines if '"object":"charge"' in line)
    # Another charge than the dictionary's own: other ids, amount and time.
    return {
        **charge,
        "id": "ch_1QzXk2Lp9RtY7uWv3Ns8Ab4C",
        "amount": 4321,
        "created": 1798000001,
        "payment_intent": "pi_1QzXk2Lp9RtY7uWv3Ns8Zz9D",
    }


def test_the_dictionary_is_the_one_its_id_names():
    # Stored blobs name it by this checksum: the file must never change.
    assert zlib.adler32(PACK_DICTIONARY.read_bytes()) == PACK_DICTIONARY_ID


def test_a_charge_packs_small_enough_for_its_event_to_fit_one_write_unit():
    charge = _charge()
    packed = pack(charge)
    assert unpack(packed) == charge
    assert len(json.dumps(charge)) > 1500
    assert len(packed) < 250


def test_blobs_packed_before_the_dictionary_still_read():
    charge = _charge()
    assert unpack(zlib.compress(json.dumps(charge).encode(), 6)) == charge


def test_values_of_any_shape_round_trip():
    for value in [{}, [], "x", 0, {"nested": [1, {"a": None}], "unicode": "€ ✓"}]:
        assert unpack(pack(value)) == value
