"""The fp64 reference of FORMAT.md section 1 in torch, for tests that check kernels against it:
the packed checkpoint layouts of section 6, the codebook decodes, the block-diagonal Hadamard
matrix and the dense equivalent weight W = diag(SU) H_m W~ H_n diag(SV).

Everything is vectorized and runs on the device of its inputs (no Python loop over rows), so a
4096 x 4096 layer takes a moment on a GPU. The codebook tables come from glqjit.format, whose
construction is checked against FORMAT.md's test vectors and SHA-256s.
"""

import functools
import math

import torch

from .format import e8p_decode, e81b_rows, hadamard_blocks, padded_in, padded_out

__all__ = [
    "decode_e81b", "decode_e8p", "dense_weight", "hadamard", "pack_e81b", "pack_e8p", "unpack_e81b", "unpack_e8p",
]


def _check_int64(name, tensor, ndim):
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.int64 or tensor.dim() != ndim:
        what = f"{tensor.dtype} of {tensor.dim()} dimensions" if isinstance(tensor, torch.Tensor) else type(tensor)
        raise ValueError(f"{name} must be an int64 tensor of {ndim} dimensions, not {what}")


def _check_codes(name, codes, limit):
    _check_int64(name, codes, 2)
    if codes.numel() and (codes.min().item() < 0 or codes.max().item() >= limit):
        raise ValueError(f"{name} holds codes outside 0..{limit - 1}")


def unpack_e8p(words):
    """E8P stage tensor (m_pad/16, n_pad/64, 8, 4) -> int64 idx16 (m_pad, n_pad/8) of 16-bit codes.

    Word [R][C][r][c] holds code_i = idx16[16R + 2r + p][8C + 2c + q] for i = 2q + p: byte i of
    its low half is code_i >> 8, and bit 4j + i of its high half is bit j of code_i (section 6).
    """
    _check_int64("an E8P stage", words, 4)
    if tuple(words.shape[2:]) != (8, 4):
        raise ValueError(f"an E8P stage has shape (m_pad/16, n_pad/64, 8, 4), not {tuple(words.shape)}")
    tiles_down, tiles_across = words.shape[:2]
    slot = torch.arange(4, device=words.device)
    expanded = words.unsqueeze(-1)  # (R, C, r, c, 1): one code per slot i on the last axis
    codes = ((expanded >> (8 * slot)) & 0xFF) << 8
    for bit in range(8):
        codes |= ((expanded >> (32 + 4 * bit + slot)) & 1) << bit
    # The slot axis i = 2q + p splits into (q, p); rows gather (R, r, p) and code columns (C, c, q).
    codes = codes.reshape(tiles_down, tiles_across, 8, 4, 2, 2)
    return codes.permute(0, 2, 5, 1, 3, 4).reshape(tiles_down * 16, tiles_across * 8)


def pack_e8p(idx16):
    """idx16 (m_pad, n_pad/8) of 16-bit codes -> the E8P stage tensor (m_pad/16, n_pad/64, 8, 4)."""
    _check_codes("idx16", idx16, 1 << 16)
    rows, groups = idx16.shape
    if rows % 16 or groups % 8:
        raise ValueError(f"idx16 of shape {tuple(idx16.shape)} is not whole 16 x 64 tiles (m_pad % 16, n_pad/8 % 8)")
    codes = idx16.reshape(rows // 16, 8, 2, groups // 8, 4, 2)  # (R, r, p, C, c, q)
    codes = codes.permute(0, 3, 1, 4, 5, 2).reshape(rows // 16, groups // 8, 8, 4, 4)  # slot i = 2q + p last
    # Disjoint bits, so OR-ing shifted values builds the word; bit 63 lands on the int64 sign bit.
    words = torch.zeros(codes.shape[:-1], dtype=torch.int64, device=idx16.device)
    for i in range(4):
        code = codes[..., i]
        words |= (code >> 8) << (8 * i)
        for bit in range(8):
            words |= ((code >> bit) & 1) << (32 + 4 * bit + i)
    return words


def unpack_e81b(words):
    """E81B stage tensor (m_pad, n_pad/64) -> int64 idx8 (m_pad, n_pad/8): byte i of word
    [row][w] is idx8[row][8w + i] (section 6)."""
    _check_int64("an E81B stage", words, 2)
    shifts = 8 * torch.arange(8, device=words.device)
    return ((words.unsqueeze(-1) >> shifts) & 0xFF).reshape(words.shape[0], words.shape[1] * 8)


def pack_e81b(idx8):
    """idx8 (m_pad, n_pad/8) of 8-bit codes -> the E81B stage tensor (m_pad, n_pad/64)."""
    _check_codes("idx8", idx8, 1 << 8)
    rows, groups = idx8.shape
    if groups % 8:
        raise ValueError(f"idx8 of shape {tuple(idx8.shape)} does not fill whole words (n_pad/8 % 8)")
    codes = idx8.reshape(rows, groups // 8, 8)
    words = torch.zeros((rows, groups // 8), dtype=torch.int64, device=idx8.device)
    for i in range(8):
        words |= codes[..., i] << (8 * i)
    return words


@functools.lru_cache(maxsize=None)
def _e8p_table_cpu():
    # Every code decoded once by format.e8p_decode (a fraction of a second), then looked up.
    return torch.tensor([e8p_decode(code) for code in range(1 << 16)], dtype=torch.float64)


@functools.lru_cache(maxsize=None)
def _table(codebook, device):
    table = _e8p_table_cpu() if codebook == "e8p" else torch.tensor(e81b_rows(), dtype=torch.float64)
    return table.to(device)


def decode_e8p(idx16):
    """idx16 (m_pad, n_pad/8) -> float64 W~ (m_pad, n_pad): code [row][g] gives W~[row][8g .. 8g+7]."""
    _check_codes("idx16", idx16, 1 << 16)
    return _table("e8p", idx16.device)[idx16].reshape(idx16.shape[0], idx16.shape[1] * 8)


def decode_e81b(idx8):
    """idx8 (m_pad, n_pad/8) -> float64 (m_pad, n_pad), each code the row of FORMAT.md section 3."""
    _check_codes("idx8", idx8, 1 << 8)
    return _table("e81b", idx8.device)[idx8].reshape(idx8.shape[0], idx8.shape[1] * 8)


def _sylvester(size, device):
    matrix = torch.ones((1, 1), dtype=torch.float64, device=device)
    while matrix.shape[0] < size:  # [[H, H], [H, -H]] gives H[i][j] = (-1)^popcount(i & j)
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)], 0)
    return matrix / math.sqrt(size)


def hadamard(d, block_diagonal=True, device=None):
    """H_d of FORMAT.md section 5 as a dense float64 [d, d] matrix: block-diagonal Sylvester
    blocks of the binary decomposition of d (one block for legacy), each scaled by 1/sqrt(b)."""
    return torch.block_diag(*[_sylvester(block, device) for block in hadamard_blocks(d, block_diagonal)])


def dense_weight(stages, stage_kinds, su, sv, wscale, inv_resid_scales, in_features, out_features,
                 block_diagonal=True):
    """The dense float64 weight [out_features, in_features] a GLQ linear computes (section 1):
    diag(SU) H_m (Wscale * sum_s c_s D_s) H_n diag(SV), restricted to the true features.

    `stages` are the packed checkpoint tensors (section 6) in stage order with their `stage_kinds`
    ('e8p' / 'e81b'); `su`, `sv` the sign vectors; `wscale` and `inv_resid_scales` (c_1.. for
    stages 1..) floats or one-element tensors. Computes on the device of stages[0].
    """
    m_pad, n_pad = padded_out(out_features, block_diagonal), padded_in(in_features, block_diagonal)
    if not stages or len(stages) != len(stage_kinds) or len(inv_resid_scales) != len(stages) - 1:
        raise ValueError(f"{len(stages)} stages, {len(stage_kinds)} stage kinds and {len(inv_resid_scales)} "
                         "inverse residual scales: a layer has at least one stage, a kind per stage and a scale "
                         "per stage after the first")
    device = stages[0].device
    w_tilde = torch.zeros((m_pad, n_pad), dtype=torch.float64, device=device)
    for index, (stage, kind, scale) in enumerate(zip(stages, stage_kinds, [1.0, *inv_resid_scales])):
        if kind not in ("e8p", "e81b"):
            raise ValueError(f"stage {index} has kind {kind!r}; a stage is 'e8p' or 'e81b'")
        stage = stage.to(device)
        codes = unpack_e8p(stage) if kind == "e8p" else unpack_e81b(stage)
        if tuple(codes.shape) != (m_pad, n_pad // 8):
            raise ValueError(f"stage {index} ({kind}) of shape {tuple(stage.shape)} holds codes for "
                             f"{codes.shape[0]} x {codes.shape[1] * 8}, but in {in_features} -> out {out_features} "
                             f"pads to m_pad {m_pad} x n_pad {n_pad}")
        w_tilde += float(scale) * (decode_e8p(codes) if kind == "e8p" else decode_e81b(codes))
    w_tilde *= float(wscale)
    if tuple(su.shape) != (m_pad,) or tuple(sv.shape) != (n_pad,):
        raise ValueError(f"SU of shape {tuple(su.shape)} and SV of shape {tuple(sv.shape)} must be ({m_pad},) and "
                         f"({n_pad},) for m_pad {m_pad} x n_pad {n_pad}")
    su = su.to(device=device, dtype=torch.float64)[:out_features]
    sv = sv.to(device=device, dtype=torch.float64)[:in_features]
    # Only the kept rows of H_m and columns of H_n are needed; SU and SV scale them in place of diag().
    left = su[:, None] * hadamard(m_pad, block_diagonal, device)[:out_features]
    right = hadamard(n_pad, block_diagonal, device)[:, :in_features] * sv[None, :]
    return left @ w_tilde @ right
