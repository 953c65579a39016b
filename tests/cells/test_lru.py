"""The LRU's parameterisation: stable at any parameter value, the paper's init ring, γ
normalisation, and the cell equal to the complex recurrence written out."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit import LRUCell
from rnnkit.cells.scan import linear_scan


def test_eigenvalues_stay_inside_the_unit_disc_for_any_parameters():
    cell = LRUCell(3, 4, state_size=64)
    with torch.no_grad():
        cell.nu_log.copy_(torch.linspace(-30, 30, 64))  # |λ| from 1 - 1e-13 to exp(-e^30)
        cell.theta_log.copy_(torch.linspace(-10, 10, 64))
    re, im = cell.eigenvalues()
    assert (re.square() + im.square() <= 1).all()  # float32 rounds 1 - 1e-13 to 1: never above
    re, im = cell.double().eigenvalues()
    assert (re.square() + im.square() < 1).all()


def test_init_draws_the_ring_and_normalises_the_input_by_gamma():
    torch.manual_seed(0)
    cell = LRUCell(3, 4, state_size=500, r_min=0.9, r_max=0.999, max_phase=math.pi / 10)
    re, im = cell.eigenvalues()
    modulus, phase = torch.sqrt(re.square() + im.square()), torch.atan2(im, re)
    assert modulus.min() >= 0.9 - 1e-6 and modulus.max() <= 0.999 + 1e-6
    assert phase.min() >= 0 and phase.max() <= math.pi / 10 + 1e-6
    torch.testing.assert_close(torch.exp(cell.gamma_log).square(), 1 - modulus.square())
    # |λ|² uniform on [r_min², r_max²]: its mean is the interval's midpoint
    assert abs(modulus.square().mean().item() - (0.81 + 0.998001) / 2) < 0.02


def test_gamma_keeps_the_state_scale_as_the_eigenvalues_near_one():
    """Under white-noise input, E|h|² reaches γ² E|Bx|² / (1 - |λ|²) = E|Bx|²: the same for
    |λ| = 0.5 and 0.999 (without γ it would be 1.3 and 500 times E|Bx|²)."""
    torch.manual_seed(1)
    for r in (0.5, 0.999):
        cell = LRUCell(4, 2, state_size=8, r_min=r, r_max=r + 1e-5).double()
        x = torch.randn(16, 3000, 4, dtype=torch.float64)
        with torch.no_grad():
            h = linear_scan(torch.complex(*cell.eigenvalues())[None, None],
                            torch.complex(*cell.drive(x)),
                            torch.zeros(16, 8, dtype=torch.complex128))  # fmt: skip
            drive = (cell.B_re.square() + cell.B_im.square()).sum(1).mean()  # E|B_j x|²
        power = h[:, 1500:].abs().square().mean()  # past 3 time constants of |λ| = 0.999
        assert abs(power / drive - 1) < 0.15, (r, float(power / drive))


def test_step_is_the_complex_recurrence():
    torch.manual_seed(2)
    cell = LRUCell(3, 4, state_size=5, activation="identity").double()
    lam = torch.complex(*cell.eigenvalues())
    B = torch.complex(cell.B_re, cell.B_im) * torch.exp(cell.gamma_log)[:, None]
    C = torch.complex(cell.C_re, cell.C_im)
    h, state = torch.zeros(2, 5, dtype=torch.complex128), cell.init_state(2, dtype=torch.float64)
    for _ in range(6):
        x = torch.randn(2, 3, dtype=torch.float64)
        h = lam * h + x.to(torch.complex128) @ B.T
        y, state = cell(x, state)
        torch.testing.assert_close(y, (h @ C.T).real + x @ cell.D.T)
        torch.testing.assert_close(torch.complex(state[1], state[2]), h)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="r_min < r_max"):
        LRUCell(3, 4, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match="activation"):
        LRUCell(3, 4, activation="swish")
    with pytest.raises(ValueError, match="state_size"):
        LRUCell(3, 4, state_size=0)
