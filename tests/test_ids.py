"""Point ids: the text stores hold is unchanged by the compact codes sweeper keeps in memory."""

import hashlib

import numpy as np

from sweeper.ids import BAD_ID, NO_ID, id_codes, id_text
from sweeper.sweep import points as pts


def _by_hand(names, rows):
    """The id of each row as the store format defines it: "p" + 15 hex digits of a SHA-1."""
    out = []
    for row in rows:
        h = hashlib.sha1("\x1f".join(names).encode())
        h.update(row)
        out.append("p" + h.hexdigest()[:15])
    return out


def test_ids_are_the_sha1_of_the_values_for_numbers_and_text():
    rate = np.array([10.0, -0.0, 0.0, 2.5e-300])
    nsyn = np.array([1, 2, 2, 4])
    rows = [np.array([r + 0.0, float(k)]).tobytes() for r, k in zip(rate, nsyn)]
    ids = pts.point_ids({"rate": rate, "nsyn": nsyn}, ["rate", "nsyn"])
    assert list(ids) == _by_hand(["rate", "nsyn"], rows)
    assert ids[1] == ids[2]  # -0.0 and 0.0 are one point
    mixed = {"g": np.array([1.5, 2.0]), "mode": np.array(["a", "b"], dtype=object), "on": np.array([True, False])}
    rows = [f"{g!r}\x1f{m!r}\x1f{o!r}".encode() for g, m, o in zip([1.5, 2.0], ["a", "b"], [True, False])]
    assert list(pts.point_ids(mixed, ["g", "mode", "on"])) == _by_hand(["g", "mode", "on"], rows)


def test_codes_and_text_convert_both_ways_in_blocks():
    rng = np.random.default_rng(1)
    table = {"a": rng.normal(size=150_000), "b": rng.integers(0, 5, 150_000)}  # more than one block
    codes = pts.point_codes(table, ["a", "b"])
    text = id_text(codes)
    assert text.dtype == object and all(len(t) == 16 and t[0] == "p" for t in text[:100])
    assert np.array_equal(id_codes(text), codes)
    assert np.array_equal(id_codes(text.astype(np.dtypes.StringDType())), codes)  # as zarr reads them
    assert int(id_codes(np.array(["p" + "f" * 15]))[0]) == 2**60 - 1


def test_missing_and_damaged_ids_have_their_own_codes():
    codes = id_codes(np.array(["", "p12", "x" * 16, "p" + "0" * 16, "p" + "g" * 15, "p" + "é" * 15,
                               "p" + "0" * 15], dtype=object))
    assert list(codes[:1]) == [NO_ID]
    assert list(codes[1:6]) == [BAD_ID] * 5
    assert codes[6] == 0
    assert list(id_text(np.array([NO_ID, BAD_ID, 0], dtype=np.uint64))) == ["", "", "p" + "0" * 15]
