"""The one-step kernels split over two threads on the crew (csrc/team.h RkCrew, forced with split
threshold 0) against the same steps on one thread and against torch's cells: the streamer at
B = 1 over several steps, Recurrent.step with autograd, and two callers contending for the
crew."""

import threading
import time

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.kernels.sequence import lib

CELLS = {
    "elman": (rnnkit.RNN, torch.nn.RNNCell),
    "gru": (rnnkit.GRU, torch.nn.GRUCell),
    "lstm": (rnnkit.LSTM, torch.nn.LSTMCell),
}
NEVER = 1 << 62


@pytest.fixture(scope="module", autouse=True)
def _loaded():
    assert kernels.available(), kernels.available().reason


def _split(split_min):
    """Runs its body with 2 threads and the step split from `split_min` weight elements."""

    class Ctx:
        def __enter__(self):
            self.old, self.threads = lib().step_configure(split_min), torch.get_num_threads()
            torch.set_num_threads(2)

        def __exit__(self, *exc):
            torch.set_num_threads(self.threads)
            lib().step_configure(self.old)

    return Ctx()


def _pair(cell, H, dtype):
    make, cell_type = CELLS[cell]
    torch.manual_seed(H)
    layer = make(H, H).to(dtype).eval()
    ref = cell_type(H, H).to(dtype)
    with torch.no_grad():
        for (name, p), (cname, q) in zip(layer.named_parameters(), ref.named_parameters(),
                                         strict=True):  # fmt: skip
            assert name.endswith(cname)
            q.copy_(p)
    return layer, ref


def _stream(layer, xs):
    streamer = layer.streamer(1)
    return torch.stack([streamer.step(x).clone() for x in xs])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("H", [128, 77])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_split_streamer_matches_one_thread_and_torch(cell, H, dtype):
    layer, ref = _pair(cell, H, dtype)
    xs = torch.randn(12, 1, H, dtype=dtype)
    with torch.no_grad(), _split(NEVER):
        one = _stream(layer, xs)
    with torch.no_grad(), _split(0):
        two = _stream(layer, xs)
    assert torch.equal(one, two)  # the sums run in the same order on either thread
    state, want = None, []
    with torch.no_grad():
        for x in xs:
            state = ref(x, state)
            want.append(state[0] if cell == "lstm" else state)
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 0}
    torch.testing.assert_close(two, torch.stack(want), **tol)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_split_step_with_autograd_matches_one_thread(cell):
    layer, _ = _pair(cell, 128, torch.float64)
    x = torch.randn(1, 128, dtype=torch.float64, requires_grad=True)
    runs = []
    for split_min in (NEVER, 0):
        layer.zero_grad()
        x.grad = None
        with _split(split_min):
            y, state = layer.step(x)
            y, _ = layer.step(y, state)
            y.pow(2).sum().backward()
        runs.append([y.detach(), x.grad, *(p.grad for p in layer.parameters())])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_the_second_part_runs_on_a_helper_thread():
    # the tests above would pass with the caller running every part itself: check that the
    # crew's helper takes its part (on a loaded machine only some steps, hence the deadline)
    layer, _ = _pair("lstm", 128, torch.float32)
    x = torch.randn(1, 128)
    with torch.no_grad(), _split(0):
        streamer = layer.streamer(1)
        before, deadline = lib().step_crew()[1], time.monotonic() + 5
        while lib().step_crew()[1] == before and time.monotonic() < deadline:
            for _ in range(100):
                streamer.step(x)
    helpers, helped = lib().step_crew()
    assert helpers >= 1 and helped > before


def test_callers_contending_for_the_crew_get_their_own_results():
    # kernels.lstm_step runs outside the GIL: two Python threads may want the crew at once;
    # the one that does not get it runs its step on its own thread
    layer, _ = _pair("lstm", 128, torch.float32)
    w = [p.detach() for p in layer.parameters()]
    xs = torch.randn(2, 150, 1, 128)

    def run(k, out):
        h = c = torch.zeros(1, 128)
        for x in xs[k]:
            _, (h, c) = kernels.lstm_step(x, (h, c), *w)
        out[k] = h

    with torch.no_grad():
        with _split(NEVER):
            want = {}
            for k in range(2):
                run(k, want)
        with _split(0):
            got = {}
            threads = [threading.Thread(target=run, args=(k, got)) for k in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    for k in range(2):
        assert torch.equal(got[k], want[k])
