/*
 * Autograd of the three sequence operators rnnkit::{elman,gru,lstm}_fwd, in C++.
 *
 * Each *_fwd returns what its *_bwd needs (csrc/rnnkit.cpp); the backward is one call of *_bwd
 * (explicit BPTT in C++). torch.library.register_autograd in Python cost ~85 us a training step
 * (its autograd.Function wrapper, the context and the Python backward), as much as the whole
 * kernel at (32, 100, 64); a torch::autograd::Function under the Autograd key costs a few.
 *
 * What it keeps from the Python formula it replaces: every tensor output is differentiable (the
 * saved buffers' gradients are ignored), undefined output gradients reach *_bwd as None (no
 * zeros are materialised), and `need` asks *_bwd only for the gradients of inputs that require
 * one. The backward ops have no autograd of their own: a double backward goes through torch's
 * autograd fallback, as before. Under torch.func transforms a C++ Function refuses with torch's
 * own message (the layers never call the kernels there: layers/capture.py).
 */
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <tuple>

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

using T4 = std::tuple<Tensor, Tensor, Tensor, Tensor>;
using T5 = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor>;
using T6 = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using T7 = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

/* The operators' C++ signatures (schemas in rnnkit.cpp). */
using ElmanFwd = T4(const Tensor &, const Tensor &, const Tensor &, const Tensor &,
                    const OptTensor &, const OptTensor &, int64_t, const OptTensor &);
using ElmanBwd = T6(const Tensor &, const Tensor &, const Tensor &, const OptTensor &,
                    const Tensor &, const Tensor &, const OptTensor &, const OptTensor &, int64_t,
                    std::array<bool, 6>);
using GruFwd = T5(const Tensor &, const Tensor &, const Tensor &, const Tensor &,
                  const OptTensor &, const OptTensor &, bool, const OptTensor &);
using GruBwd = T6(const Tensor &, const Tensor &, const Tensor &, const OptTensor &,
                  const Tensor &, const Tensor &, const Tensor &, const OptTensor &,
                  const OptTensor &, bool, std::array<bool, 6>);
using LstmFwd = T6(const Tensor &, const Tensor &, const Tensor &, const Tensor &,
                   const Tensor &, const OptTensor &, const OptTensor &, const OptTensor &);
using LstmBwd = T7(const Tensor &, const Tensor &, const Tensor &, const OptTensor &,
                   const Tensor &, const Tensor &, const Tensor &, const OptTensor &,
                   const OptTensor &, const OptTensor &, std::array<bool, 7>);

template <typename F>
c10::TypedOperatorHandle<F> op_handle(const char *name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<F>();
}

bool present(const OptTensor &t) { return t && t->defined(); }
OptTensor opt(const Tensor &t) { return t.defined() ? OptTensor(t) : std::nullopt; }

/* Which of the first N tensor arguments were given, as a bit mask for saved_data. */
template <size_t N>
int64_t mask_of(const std::array<bool, N> &given) {
    int64_t m = 0;
    for (size_t i = 0; i < N; i++) m |= (int64_t)given[i] << i;
    return m;
}

/* needs_input_grad of the first N tensor arguments. The context numbers only the arguments
 * that were given (an absent bias has no edge), so count the given ones before each. */
template <size_t N>
std::array<bool, N> needs(AutogradContext *ctx) {
    int64_t m = ctx->saved_data["given"].toInt();
    std::array<bool, N> need{};
    size_t edge = 0;
    for (size_t i = 0; i < N; i++)
        if (m >> i & 1) need[i] = ctx->needs_input_grad(edge++);
    return need;
}

/* One gradient per forward argument (`extra` non-differentiable ones after the N tensors),
 * undefined where not needed. */
template <size_t N, typename Tup>
variable_list grads_out(const Tup &g, const std::array<bool, N> &need, int extra) {
    variable_list out;
    out.reserve(N + extra);
    std::apply([&](const auto &...t) { (out.push_back(t), ...); }, g);
    for (size_t i = 0; i < N; i++)
        if (!need[i]) out[i] = Tensor();
    out.insert(out.end(), extra, Tensor());
    return out;
}

struct ElmanSeq : public torch::autograd::Function<ElmanSeq> {
    static variable_list forward(AutogradContext *ctx, const Tensor &x, const Tensor &h0,
                                 const Tensor &w_ih, const Tensor &w_hh, const OptTensor &b_ih,
                                 const OptTensor &b_hh, int64_t act, const OptTensor &lengths) {
        static auto op = op_handle<ElmanFwd>("rnnkit::elman_fwd");
        at::AutoDispatchBelowADInplaceOrView guard;
        auto [out, h_n, P, hN] = op.call(x, h0, w_ih, w_hh, b_ih, b_hh, act, lengths);
        ctx->save_for_backward({x, w_ih, w_hh, P, hN, present(lengths) ? *lengths : Tensor()});
        ctx->saved_data["act"] = act;
        ctx->saved_data["given"] = mask_of<6>(
            {x.defined(), h0.defined(), w_ih.defined(), w_hh.defined(), present(b_ih),
             present(b_hh)});
        ctx->set_materialize_grads(false);
        return {out, h_n, P, hN};
    }
    static variable_list backward(AutogradContext *ctx, variable_list go) {
        static auto op = op_handle<ElmanBwd>("rnnkit::elman_bwd");
        auto s = ctx->get_saved_variables();
        auto need = needs<6>(ctx);
        auto g = op.call(s[0], s[1], s[2], opt(s[5]), s[3], s[4], opt(go[0]), opt(go[1]),
                         ctx->saved_data["act"].toInt(), need);
        return grads_out<6>(g, need, 2);
    }
};

struct GruSeq : public torch::autograd::Function<GruSeq> {
    static variable_list forward(AutogradContext *ctx, const Tensor &x, const Tensor &h0,
                                 const Tensor &w_ih, const Tensor &w_hh, const OptTensor &b_ih,
                                 const OptTensor &b_hh, bool reset_after,
                                 const OptTensor &lengths) {
        static auto op = op_handle<GruFwd>("rnnkit::gru_fwd");
        at::AutoDispatchBelowADInplaceOrView guard;
        auto [out, h_n, hs, gates, ext] =
            op.call(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, lengths);
        ctx->save_for_backward(
            {x, w_ih, w_hh, hs, gates, ext, present(lengths) ? *lengths : Tensor()});
        ctx->saved_data["ra"] = reset_after;
        ctx->saved_data["given"] = mask_of<6>(
            {x.defined(), h0.defined(), w_ih.defined(), w_hh.defined(), present(b_ih),
             present(b_hh)});
        ctx->set_materialize_grads(false);
        return {out, h_n, hs, gates, ext};
    }
    static variable_list backward(AutogradContext *ctx, variable_list go) {
        static auto op = op_handle<GruBwd>("rnnkit::gru_bwd");
        auto s = ctx->get_saved_variables();
        auto need = needs<6>(ctx);
        auto g = op.call(s[0], s[1], s[2], opt(s[6]), s[3], s[4], s[5], opt(go[0]), opt(go[1]),
                         ctx->saved_data["ra"].toBool(), need);
        return grads_out<6>(g, need, 2);
    }
};

struct LstmSeq : public torch::autograd::Function<LstmSeq> {
    static variable_list forward(AutogradContext *ctx, const Tensor &x, const Tensor &h0,
                                 const Tensor &c0, const Tensor &w_ih, const Tensor &w_hh,
                                 const OptTensor &b_ih, const OptTensor &b_hh,
                                 const OptTensor &lengths) {
        static auto op = op_handle<LstmFwd>("rnnkit::lstm_fwd");
        at::AutoDispatchBelowADInplaceOrView guard;
        auto [out, h_n, c_n, hs, cs, gates] =
            op.call(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths);
        ctx->save_for_backward(
            {x, w_ih, w_hh, hs, cs, gates, present(lengths) ? *lengths : Tensor()});
        ctx->saved_data["given"] = mask_of<7>(
            {x.defined(), h0.defined(), c0.defined(), w_ih.defined(), w_hh.defined(),
             present(b_ih), present(b_hh)});
        ctx->set_materialize_grads(false);
        return {out, h_n, c_n, hs, cs, gates};
    }
    static variable_list backward(AutogradContext *ctx, variable_list go) {
        static auto op = op_handle<LstmBwd>("rnnkit::lstm_bwd");
        auto s = ctx->get_saved_variables();
        auto need = needs<7>(ctx);
        auto g = op.call(s[0], s[1], s[2], opt(s[6]), s[3], s[4], s[5], opt(go[0]), opt(go[1]),
                         opt(go[2]), need);
        return grads_out<7>(g, need, 1);
    }
};

T4 elman_fwd_ad(const Tensor &x, const Tensor &h0, const Tensor &w_ih, const Tensor &w_hh,
                const OptTensor &b_ih, const OptTensor &b_hh, int64_t act,
                const OptTensor &lengths) {
    auto r = ElmanSeq::apply(x, h0, w_ih, w_hh, b_ih, b_hh, act, lengths);
    return {r[0], r[1], r[2], r[3]};
}

T5 gru_fwd_ad(const Tensor &x, const Tensor &h0, const Tensor &w_ih, const Tensor &w_hh,
              const OptTensor &b_ih, const OptTensor &b_hh, bool reset_after,
              const OptTensor &lengths) {
    auto r = GruSeq::apply(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, lengths);
    return {r[0], r[1], r[2], r[3], r[4]};
}

T6 lstm_fwd_ad(const Tensor &x, const Tensor &h0, const Tensor &c0, const Tensor &w_ih,
               const Tensor &w_hh, const OptTensor &b_ih, const OptTensor &b_hh,
               const OptTensor &lengths) {
    auto r = LstmSeq::apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths);
    return {r[0], r[1], r[2], r[3], r[4], r[5]};
}

}  // namespace

TORCH_LIBRARY_IMPL(rnnkit, Autograd, m) {
    m.impl("elman_fwd", &elman_fwd_ad);
    m.impl("gru_fwd", &gru_fwd_ad);
    m.impl("lstm_fwd", &lstm_fwd_ad);
}
