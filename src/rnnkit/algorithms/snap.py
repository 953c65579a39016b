"""Sparse n-step approximation of RTRL (SnAp; Menick et al. 2021).

SnAp keeps only the entries of the influence matrix M_t = ds_t/dθ that become nonzero within
n steps of the dynamics and drops the rest at every step:

    M_t ≈ (D_t M_{t-1} + I_t) ⊙ mask_n,   mask_1 = units(pattern(I)),
    mask_n = pattern(D^{n-1} mask_1) ∪ ... ∪ mask_1

where units(·) adds the other state entries of each unit touched (an LSTM unit is (h_i, c_i)).

SnAp-1 keeps, for each parameter, only the state entries of the units it moves in one step:
row i of W_ih, W_hh, b (and of every gate block of a GRU/LSTM) keeps dh_i/dθ, and for an LSTM
also dc_i/dθ. The influence then has m entries per parameter (m = 1 for Elman and GRU, 2 for
LSTM): B·P·m memory. Exceptions follow the structure: in a GRU with reset_after=False the
reset gate of unit j reaches every unit in one step (through W_hn (r ⊙ h)), so its parameters
keep a full column (m = H there); in a stack, a lower layer's parameters reach the upper
layer's units within the same step.
SnAp-1 is exact whenever D_t is block-diagonal over units (an Elman or GRU cell with diagonal
W_hh blocks: D_t diagonal; an LSTM with diagonal W_hh blocks: 2 × 2 blocks (h_i, c_i));
SnAp-2 is exact for a dense Elman cell (it is RTRL there).

The sparsity pattern is read off the step's Jacobians at random probe points (32 random states,
inputs and parameter values, the union of their nonzeros), so it is structural: it does not
depend on weights that are zero now, and an activation whose derivative is zero at one point
(ReLU) is nonzero at another.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .rtrl import RecurrentStep, _nbytes

PROBES = 32


class SnAp:
    """SnAp-n: RTRL with the influence matrix restricted to a fixed sparsity pattern.

    Cost per step (m = entries kept per parameter, C = colours of the pattern, both ≤ S):
    memory B·P·m for the influence (SnAp-1: B·P for Elman/GRU, 2·B·P for LSTM) — the same
    order as the parameters and independent of the sequence length; work O(B·P·m²) to update
    it, plus O(B·C·P) for the C vector-Jacobian products that give the kept entries of I_t
    (C = 1 for Elman/GRU, 2 for LSTM: rows sharing no parameter are compressed into one
    product) and O(B·S·H²) for D_t, which this implementation forms densely with torch.func
    (S products; the paper's O(P) would need each cell's diagonal of D_t in closed form).

    Args:
        core: a cell or a unidirectional `Recurrent` layer (see `RecurrentStep`).
        level: n, the number of steps the pattern follows (1 or 2; higher is allowed).
        analytic: closed-form Jacobians for a single ElmanCell (else torch.func); with it,
            D_t costs O(B·H²) and SnAp-1's step is O(B·P), as in the paper.

    Example:
        >>> alg = SnAp(LSTMCell(3, 8), level=1)
        >>> alg.reset(4)
        >>> y = alg.step(torch.randn(4, 3))
        >>> alg.backward((y ** 2).sum())
        >>> alg.rows.shape         # (P, m): the state entries kept for each parameter
    """

    def __init__(self, core: nn.Module, level: int = 1, analytic: bool = True):
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise ValueError(f"SnAp: level must be an integer >= 1, got {level!r}")
        self.fn = RecurrentStep(core, analytic)
        self.params = self.fn.params
        self.level = level
        self.name = f"snap{level}"
        self.pattern = self._pattern()  # (S, P) bool
        self.rows, self.valid = _rows_per_column(self.pattern)  # (P, m) long, (P, m) bool
        self.colours = _colour_rows(self.pattern)  # (S,) long
        self.n_colours = int(self.colours.max()) + 1
        self.state: Tensor | None = None
        self.influence: Tensor | None = None  # (B, P, m)
        self._leaf: Tensor | None = None

    # ---- the pattern ----------------------------------------------------------------------

    @torch.no_grad()
    def _pattern(self) -> Tensor:
        p0 = self.params[0]
        gen = torch.Generator(device=p0.device).manual_seed(0)
        S, P = self.fn.S, self.fn.P
        d_pat = torch.zeros(S, S, dtype=torch.bool, device=p0.device)
        i_pat = torch.zeros(S, P, dtype=torch.bool, device=p0.device)
        for _ in range(PROBES // 8):  # chunks of 8 keep the probe's dense Jacobians small
            s = torch.randn(8, S, generator=gen, device=p0.device, dtype=p0.dtype)
            x = torch.randn(8, self.fn.input_size, generator=gen, device=p0.device, dtype=p0.dtype)
            # Random parameter values too: the pattern must not depend on weights that
            # happen to be zero now (an IRNN's identity W_hh, a zero bias).
            params = tuple(
                torch.randn(p.shape, generator=gen, device=p0.device, dtype=p0.dtype)
                for p in self.params
            )
            _, D, I = self.fn.jacobians(s, x, params)
            d_pat |= (D != 0).any(0)
            i_pat |= (I != 0).any(0)
        # A parameter keeps every row of the units it touches: an LSTM unit is (h_i, c_i), so
        # the output gate's weights keep dc_i/dθ too, which is nonzero from the next step on.
        same_unit = self.fn.unit_matrix().to(p0.device)
        self.units = same_unit
        pattern = (same_unit.float() @ i_pat.float()) > 0
        reach = pattern.float()
        for _ in range(self.level - 1):
            reach = ((d_pat.float() @ reach) > 0).float()
            pattern |= reach.bool()
        return pattern

    # ---- the algorithm ----------------------------------------------------------------------

    def reset(self, batch: int, device=None, dtype=None) -> None:
        """Start new sequences: zero state and zero influence."""
        p0 = self.params[0]
        device, dtype = device or p0.device, dtype or p0.dtype
        self.state = self.fn.init_state(batch, device, dtype)
        m = self.rows.shape[1]
        self.influence = torch.zeros(batch, self.fn.P, m, device=device, dtype=dtype)
        self._leaf = None

    def step(self, x_t: Tensor) -> Tensor:
        """x_t (B, D) -> y_t (B, O), differentiable with respect to the state s_t only."""
        if self.state is None:
            raise RuntimeError("SnAp: call reset(batch) before step()")
        with torch.no_grad():
            s_new, D, I_kept = self._jacobians(self.state, x_t)
            rows = self.rows
            # D restricted to each column's kept rows: (B, P, m, m).
            D_kept = D[:, rows[:, :, None], rows[:, None, :]]
            D_kept = D_kept * (self.valid[:, :, None] & self.valid[:, None, :])
            new = torch.einsum("bpij,bpj->bpi", D_kept, self.influence) + I_kept
            self.influence = new * self.valid
        self.state = s_new
        self._leaf = s_new.detach().requires_grad_(True)
        return self._leaf[:, self.fn.out_slice]

    def _jacobians(self, s: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """s_t (B, S), D_t (B, S, S), and I_t at the kept entries (B, P, m)."""
        B = s.shape[0]
        colour_cot = nn.functional.one_hot(self.colours, self.n_colours).T.to(s.dtype)  # (C, S)
        s_new, D = self.fn.state_jacobian(s, x)
        by_colour = self.fn.param_vjp(s, x, colour_cot.expand(B, -1, -1))  # (B, C, P)
        # Each kept entry (row r, column p) is the product for r's colour at p: no other row
        # of column p has that colour, so the compressed product holds I_t[r, p] alone.
        colour_of_kept = self.colours[self.rows]  # (P, m)
        cols = torch.arange(self.fn.P, device=s.device)[:, None].expand_as(self.rows)
        I_kept = by_colour[:, colour_of_kept, cols]  # (B, P, m)
        return s_new, D, I_kept

    def backward(self, loss: Tensor) -> None:
        """Backpropagate `loss` and add the SnAp gradient to the parameters' .grad."""
        loss.backward()
        leaf = self._leaf
        g = None if leaf is None else leaf.grad
        if leaf is not None:
            leaf.grad = None
        if g is not None:
            g_kept = g[:, self.rows]  # (B, P, m)
            self.fn.add_to_grads((g_kept * self.influence).sum(dim=(0, 2)))

    def dense_influence(self) -> Tensor:
        """The kept influence scattered into the full (B, S, P) matrix (for tests and plots)."""
        B = self.influence.shape[0]
        out = torch.zeros(B, self.fn.S, self.fn.P, dtype=self.influence.dtype)
        cols = torch.arange(self.fn.P)[:, None].expand_as(self.rows)
        vals = self.influence * self.valid  # (B, P, m); padding adds zeros
        b = torch.arange(B)[:, None, None].expand_as(vals)
        rows, cols = self.rows.expand_as(vals), cols.expand_as(vals)
        out.index_put_((b, rows, cols), vals, accumulate=True)
        return out

    def flush(self) -> None:
        """Nothing is pending: the gradient is complete at every step."""

    def carried_bytes(self) -> int:
        return _nbytes(self.state, self.influence)

    def state_tensors(self):
        return self.fn.unflatten(self.state)


def _rows_per_column(pattern: Tensor) -> tuple[Tensor, Tensor]:
    """For a (S, P) pattern: the kept rows of each column, padded to m = the most per column.

    Returns rows (P, m) long (padding repeats row 0) and valid (P, m) bool.
    """
    counts = pattern.sum(0)  # (P,)
    m = max(int(counts.max()), 1)
    order = torch.argsort((~pattern).to(torch.int8), dim=0, stable=True)  # kept rows first
    rows = order[:m].T.contiguous()  # (P, m)
    valid = torch.arange(m, device=pattern.device)[None, :] < counts[:, None]
    return torch.where(valid, rows, torch.zeros_like(rows)), valid


def _colour_rows(pattern: Tensor) -> Tensor:
    """Greedy colouring of the state rows so that no column holds two rows of one colour.

    Rows of one colour can share a single vector-Jacobian product (Curtis, Powell & Reid 1974).
    """
    S = pattern.shape[0]
    pf = pattern.float()
    conflict = (pf @ pf.T) > 0  # (S, S): rows that share a column
    colours = torch.full((S,), -1, dtype=torch.long)
    for r in range(S):
        taken = set(colours[conflict[r].cpu()].tolist())
        c = 0
        while c in taken:
            c += 1
        colours[r] = c
    return colours.to(pattern.device)
