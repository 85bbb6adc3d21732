"""The facts of FORMAT.md in Python: padding and Hadamard blocks, bpw recipes, checkpoint tensor
names, and the E8P and E81B codebooks built by construction.

Standard library only, so checkpoint checks and tests run where torch is not installed. The C++
twins are format/geometry.cpp, format/recipe.cpp and format/codebook.cpp; both follow FORMAT.md.
"""

import functools

# Features beyond this are rejected as absurd, as the C++ make_geometry does (kMaxFeatures).
MAX_FEATURES = 1 << 20
MIN_BPW = 2
MAX_BPW = 8
# FORMAT.md section 7 names stage 0 Qidxs_e8p and later stages 2, 3, 4: at most four stages.
MAX_STAGES = 4


def _check_features(name, features):
    if isinstance(features, bool) or not isinstance(features, int) or not 1 <= features <= MAX_FEATURES:
        raise ValueError(
            f"{name} {features!r} is not supported: glqjit accepts integers 1..{MAX_FEATURES}; "
            "check the layer shape read from the model"
        )


def _round_up(value, multiple):
    return (value + multiple - 1) // multiple * multiple


def _legacy_padded(features, tile):
    # One block of a power of two, which must still hold whole 16 x 64 tiles (format/geometry.cpp).
    return 1 << (max(features, tile) - 1).bit_length()


def padded_in(in_features, block_diagonal=True):
    """n_pad of FORMAT.md section 5: a multiple of 64, or for legacy files the next power of two >= 64."""
    _check_features("in_features", in_features)
    return _round_up(in_features, 64) if block_diagonal else _legacy_padded(in_features, 64)


def padded_out(out_features, block_diagonal=True):
    """m_pad of FORMAT.md section 5: a multiple of 16, or for legacy files the next power of two >= 16."""
    _check_features("out_features", out_features)
    return _round_up(out_features, 16) if block_diagonal else _legacy_padded(out_features, 16)


def hadamard_blocks(d, block_diagonal=True):
    """The Hadamard blocks of a padded size, in order: its binary decomposition in descending
    powers of two (11008 -> [8192, 2048, 512, 256]), or the one block of a legacy file."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"padded size {d!r} has no Hadamard blocks: it must be an integer of at least 1")
    if not block_diagonal:
        if d & (d - 1):
            raise ValueError(
                f"padded size {d} is not a power of two, so it cannot be the single block of a legacy "
                "(block_diagonal: false) layer; take it from padded_in/padded_out with block_diagonal=False"
            )
        return [d]
    return [1 << bit for bit in range(d.bit_length() - 1, -1, -1) if d >> bit & 1]


def stage_kinds(bpw):
    """The stages of a bpw recipe (FORMAT.md section 4): bpw // 2 E8P stages, then E81B if bpw is odd."""
    if isinstance(bpw, bool) or not isinstance(bpw, int) or not MIN_BPW <= bpw <= MAX_BPW:
        raise ValueError(
            f"bpw {bpw!r} is not supported: glqjit supports integer bpw {MIN_BPW}..{MAX_BPW} "
            "(FORMAT.md section 4); leave this layer unquantized or requantize it"
        )
    return ["e8p"] * (bpw // 2) + (["e81b"] if bpw % 2 else [])


def _check_stage_index(stage_index, first):
    if isinstance(stage_index, bool) or not isinstance(stage_index, int) or not first <= stage_index < MAX_STAGES:
        raise ValueError(f"stage index {stage_index!r} is outside {first}..{MAX_STAGES - 1} (FORMAT.md section 7)")


def stage_tensor_leaf(stage_index, kind):
    """The checkpoint name of a stage's codes after the layer prefix (FORMAT.md section 7):
    stage 0 is "Qidxs_e8p", stage 1 "Qidxs2_e8p" or "Qidxs2_e81b", and so on."""
    _check_stage_index(stage_index, 0)
    if kind not in ("e8p", "e81b"):
        raise ValueError(f"codebook {kind!r} is unknown: a stage is 'e8p' or 'e81b' (FORMAT.md sections 2 and 3)")
    return f"Qidxs{'' if stage_index == 0 else stage_index + 1}_{kind}"


def scale_tensor_leaf(stage_index):
    """The name of c_s, the cumulative inverse residual scale of stage s >= 1 (FORMAT.md section 4):
    "inv_resid_scale", "inv_resid_scale2", "inv_resid_scale3". Stage 0 has none (c_0 = 1)."""
    _check_stage_index(stage_index, 1)
    return "inv_resid_scale" if stage_index == 1 else f"inv_resid_scale{stage_index}"


def _lattice_rows(doubled_values, max_doubled_square_sum):
    """Every 8-vector over `doubled_values` (twice the values) with an even coordinate sum in value
    units and squared norm within the bound, coordinate 0 varying slowest as FORMAT.md enumerates.
    Branches whose squared norm is already too large are cut, which keeps this well under a second."""
    rows = []
    row = [0] * 8

    def descend(coordinate, square_sum):
        if coordinate == 8:
            if sum(row) % 4 == 0:  # doubled sum divisible by 4: the sum of the values is even
                rows.append(tuple(row))
            return
        for value in doubled_values:
            if square_sum + value * value <= max_doubled_square_sum:
                row[coordinate] = value
                descend(coordinate + 1, square_sum + value * value)

    descend(0, 0)
    return rows


# FORMAT.md section 2.1 step 3, in half units.
_E8P_APPENDED_ROWS = (
    (3, 1, 1, 1, 3, 3, 3, 3), (1, 3, 1, 1, 3, 3, 3, 3), (1, 1, 3, 1, 3, 3, 3, 3), (1, 1, 1, 3, 3, 3, 3, 3),
    (3, 3, 3, 1, 3, 3, 1, 1), (3, 3, 3, 1, 3, 1, 3, 1), (3, 3, 3, 1, 1, 3, 3, 1), (3, 3, 3, 1, 3, 1, 1, 3),
    (3, 3, 3, 1, 1, 3, 1, 3), (3, 3, 3, 1, 1, 1, 3, 3), (3, 3, 1, 3, 3, 3, 1, 1), (3, 3, 1, 3, 3, 1, 3, 1),
    (3, 3, 1, 3, 1, 3, 3, 1), (3, 3, 1, 3, 3, 1, 1, 3), (3, 3, 1, 3, 1, 3, 1, 3), (3, 3, 1, 3, 1, 1, 3, 3),
    (3, 1, 3, 3, 3, 3, 1, 1), (3, 1, 3, 3, 3, 1, 3, 1), (3, 1, 3, 3, 1, 3, 3, 1), (3, 1, 3, 3, 3, 1, 1, 3),
    (3, 1, 3, 3, 1, 3, 1, 3), (1, 3, 3, 3, 1, 1, 3, 3), (1, 3, 3, 3, 3, 3, 1, 1), (1, 3, 3, 3, 3, 1, 3, 1),
    (1, 3, 3, 3, 1, 3, 3, 1), (1, 3, 3, 3, 3, 1, 1, 3), (1, 3, 3, 3, 1, 3, 1, 3), (1, 1, 3, 3, 1, 3, 3, 3),
    (3, 3, 1, 1, 3, 3, 3, 1),
)


@functools.lru_cache(maxsize=None)
def _e8p_abs_rows():
    # Half units: odd h in -7..7, sum(h) divisible by 4, sum(h^2) <= 40 (squared norm of v <= 10).
    signed = _lattice_rows(range(-7, 8, 2), 40)
    distinct = sorted({tuple(abs(h) for h in row) for row in signed})
    if len(distinct) != 227:
        raise AssertionError(f"E8P abs construction gave {len(distinct)} rows, FORMAT.md 2.1 says 227")
    rows = []
    for row in distinct + list(_E8P_APPENDED_ROWS):
        if sum(row) // 2 % 2:  # step 4: make the coordinate sum even in value units
            row = row[:7] + (-row[7],)
        rows.append(row)
    return tuple(rows)


def e8p_abs_rows():
    """ABS[a] of FORMAT.md section 2.1, a = 0..255, in half units (value = h / 2), after step 4."""
    return list(_e8p_abs_rows())


# Bit j of the sign byte negates coordinate _E8P_SIGN_PERM[j] (FORMAT.md section 2.2).
_E8P_SIGN_PERM = (0, 2, 4, 6, 1, 3, 5, 7)


def e8p_decode(code):
    """The eight values of a 16-bit E8P code (FORMAT.md section 2.2)."""
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise ValueError(f"E8P code {code!r} is not a 16-bit unsigned integer")
    signs = code & 0xFF
    parity = bin(signs).count("1") & 1
    signs ^= parity
    values = [h / 2 for h in _e8p_abs_rows()[code >> 8]]
    for j, coordinate in enumerate(_E8P_SIGN_PERM):
        if signs >> j & 1:
            values[coordinate] = -values[coordinate]
    shift = -0.25 if parity else 0.25
    return tuple(value + shift for value in values)


@functools.lru_cache(maxsize=None)
def _e81b_rows():
    # Doubled units keep every test integral: squared norm <= 2 is a doubled square sum <= 8.
    integral = _lattice_rows(range(-8, 7, 2), 8)  # coordinates -4..3
    half_integral = _lattice_rows(range(-7, 8, 2), 8)  # coordinates -3.5..3.5
    rows = [tuple(h / 2 for h in row) for row in integral + half_integral]
    for sign, count in ((2.0, 8), (-2.0, 7)):  # -2 e_7 is absent
        for i in range(count):
            rows.append(tuple(sign if k == i else 0.0 for k in range(8)))
    if (len(integral), len(half_integral), len(rows)) != (113, 128, 256):
        raise AssertionError(
            f"E81B construction gave {len(integral)} + {len(half_integral)} rows, {len(rows)} in all; "
            "FORMAT.md 3 says 113 + 128, 256 in all"
        )
    return tuple(rows)


def e81b_rows():
    """The 256 rows of FORMAT.md section 3 (values); an E81B code is the row index."""
    return list(_e81b_rows())
