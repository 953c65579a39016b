/*
 * One recurrent step for a small batch (B = 1-8), forward (optionally saving what its backward
 * needs) and backward, written once and instantiated for float and double by step.cpp (which
 * defines REAL, SUF, SIGM, TANH before including).
 *
 * Shapes: x (B, D) with row stride ldx; h, c (B, H) contiguous; G gates (1, 3, 4) and GH = G*H.
 * The forward reads the weights transposed and packed in strips per gate, WihT (D, GH) and
 * WhhT (H, GH) (kernels/step.py pack_gates; sp_proj_strips), so each weight is read once, in
 * sequence, and scaled into all B outputs (no horizontal sums, no per-call packing: at B <= 8
 * what sgemm does first costs more than the product). The backward reads
 * them as torch stores them, Wih (GH, D) and Whh (GH, H), which is the same access pattern for
 * dx = dA Wih and dh = dA Whh.
 *
 * Both split their columns over threads (a range of hidden units per thread in the forward, of
 * input/hidden columns in the backward), so no thread waits for another: at H = 256 an LSTM
 * step reads 2 MB of weights, more than one core's L2, and half of it fits.
 *
 * Saved per step (B, 4H): GRU r, z, n and ext (W_hn h + b_hn with reset_after, else r h);
 * LSTM i, f, g, o. Elman saves nothing: its backward reads h_new.
 */

/* Y[:, :n] (+)= X (B, K) W[:, :n], for W row-major (sp_proj) or packed in strips
 * (sp_proj_strips).
 *
 * Column blocks of four 64-byte vectors accumulate in registers over all K rows, even and odd
 * rows into separate accumulators (8 independent FMA chains: the product is latency-bound
 * otherwise, a B = 1 step being one pass over K rows). GCC's vector extension keeps them in
 * registers, which plain arrays did not. Every column is summed in the same order whatever
 * block it falls in (init + even rows, odd rows, then their sum), so a column split over
 * threads gives the same result as one thread. */
typedef REAL SUF(vec) __attribute__((vector_size(64)));
#define RK_VL ((int)(64 / sizeof(REAL)))

RK_INLINE SUF(vec) SUF(vload)(const REAL *p) {
    SUF(vec) v;
    memcpy(&v, p, sizeof v);
    return v;
}

RK_VEC static void SUF(sp_gemv)(int B, int n, int K, const REAL *X, int ldx, const REAL *W,
                                size_t vstep, size_t rstep, int tail_ld, int accumulate,
                                REAL *Y, int ldy) {
    /* vector v (columns v*RK_VL ...) of row k is at W + v*vstep + k*rstep; the columns past the
     * last whole vector at T + k*tail_ld + i, T = W + (n / RK_VL)*vstep */
    typedef SUF(vec) V;
    int full = n / RK_VL * RK_VL;
    for (int b = 0; b < B; b++) {
        REAL *y = Y + (size_t)b * ldy;
        const REAL *xb = X + (size_t)b * ldx;
        int j0 = 0;
        for (; j0 + 4 * RK_VL <= full; j0 += 4 * RK_VL) {
            V a[4], e[4];
            for (int i = 0; i < 4; i++) {
                a[i] = accumulate ? SUF(vload)(y + j0 + i * RK_VL) : V{};
                e[i] = V{};
            }
            const REAL *w = W + (size_t)(j0 / RK_VL) * vstep;
            int k = 0;
            for (; k + 2 <= K; k += 2, w += 2 * rstep) {
                REAL x0 = xb[k], x1 = xb[k + 1];
                for (int i = 0; i < 4; i++) a[i] += x0 * SUF(vload)(w + i * vstep);
                for (int i = 0; i < 4; i++) e[i] += x1 * SUF(vload)(w + i * vstep + rstep);
            }
            if (k < K)
                for (int i = 0; i < 4; i++) a[i] += xb[k] * SUF(vload)(w + i * vstep);
            for (int i = 0; i < 4; i++) {
                V v = a[i] + e[i];
                memcpy(y + j0 + i * RK_VL, &v, sizeof v);
            }
        }
        for (; j0 < full; j0 += RK_VL) { /* the same, one vector wide */
            V a = accumulate ? SUF(vload)(y + j0) : V{}, e = V{};
            const REAL *w = W + (size_t)(j0 / RK_VL) * vstep;
            int k = 0;
            for (; k + 2 <= K; k += 2, w += 2 * rstep) {
                a += xb[k] * SUF(vload)(w);
                e += xb[k + 1] * SUF(vload)(w + rstep);
            }
            if (k < K) a += xb[k] * SUF(vload)(w);
            V v = a + e;
            memcpy(y + j0, &v, sizeof v);
        }
        const REAL *t = W + (size_t)(full / RK_VL) * vstep;
        for (int i = 0; i < n - full; i++) { /* and one column at a time */
            REAL a = accumulate ? y[full + i] : 0, e = 0;
            const REAL *w = t + i;
            int k = 0;
            for (; k + 2 <= K; k += 2, w += 2 * (size_t)tail_ld) {
                a += xb[k] * w[0];
                e += xb[k + 1] * w[tail_ld];
            }
            if (k < K) a += xb[k] * w[0];
            y[full + i] = a + e;
        }
    }
}

/* WT row-major (K, >= n) with leading dimension ldw */
RK_INLINE void SUF(sp_proj)(int B, int n, int K, const REAL *X, int ldx, const REAL *WT, int ldw,
                            int accumulate, REAL *Y, int ldy) {
    SUF(sp_gemv)(B, n, K, X, ldx, WT, RK_VL, ldw, ldw, accumulate, Y, ldy);
}

/* Y[:, :n] (+)= X (B, K) P[:, j0:j0 + n] for one gate's weights packed in strips (see
 * kernels/step.py pack_gates): the gate's H columns as strips of RK_VL columns, each strip
 * K x RK_VL contiguous, the last one K x (H % RK_VL). P points at the strip of column j0
 * (a multiple of RK_VL); columns past a multiple of RK_VL exist only at the gate's end. Every
 * weight is read in one sequential stream per strip, which the hardware prefetchers follow
 * better than rows of a (K, G*H) matrix (8-18% faster at H = 128-256, where the weights sit in
 * L2 or beyond). The sums run in the same order as sp_proj's, so a split is exact. */
RK_INLINE void SUF(sp_proj_strips)(int B, int n, int K, const REAL *X, int ldx, const REAL *P,
                                   int accumulate, REAL *Y, int ldy) {
    SUF(sp_gemv)(B, n, K, X, ldx, P, (size_t)K * RK_VL, RK_VL, n % RK_VL, accumulate, Y, ldy);
}
#undef RK_VL

/* The biases as the gate loops add them: bx (GH) = b_ih + b_hh, except that with reset_after
 * the GRU's b_hn stays inside r * (W_hn h + b_hn), in bh (H); absent biases count as zero. */
RK_VEC static void SUF(step_bias)(int GH, int H, int ra, const REAL *bih, const REAL *bhh,
                                  REAL *restrict bx, REAL *restrict bh) {
    int both = ra ? 2 * H : GH; /* columns that take b_hh */
    if (bih) memcpy(bx, bih, (size_t)GH * sizeof(REAL));
    else memset(bx, 0, (size_t)GH * sizeof(REAL));
    if (bhh) {
        RK_C b = bhh;
        RK_IVDEP for (int j = 0; j < both; j++) bx[j] += b[j];
        if (ra) memcpy(bh, bhh + 2 * H, (size_t)H * sizeof(REAL));
    } else if (ra) {
        memset(bh, 0, (size_t)H * sizeof(REAL));
    }
}

/* y (n) += x (n) */
RK_VEC static void SUF(add_rows)(int n, REAL *restrict y, const REAL *restrict x) {
    for (int j = 0; j < n; j++) y[j] += x[j];
}

/* dW[:, :n] = A^T (GH, B) X[:, :n]: the weight gradient of one step, one row per gate unit. */
RK_VEC static void SUF(sp_outer)(int B, int rows, int n, const REAL *A, int lda, const REAL *X,
                                 int ldx, REAL *dW, int ldw) {
    for (int r = 0; r < rows; r++) {
        REAL *restrict w = dW + (size_t)r * ldw;
        const REAL *restrict x0 = X;
        REAL a0 = A[r];
        for (int j = 0; j < n; j++) w[j] = a0 * x0[j];
        for (int b = 1; b < B; b++) {
            const REAL *restrict xb = X + (size_t)b * ldx;
            REAL ab = A[(size_t)b * lda + r];
            for (int j = 0; j < n; j++) w[j] += ab * xb[j];
        }
    }
}

/* The arguments of one step, forward and backward (a null pointer: absent / not wanted). */
typedef struct {
    int kind, opt, B, D, H; /* kind 0 Elman (opt: activation), 1 GRU (opt: reset_after), 2 LSTM */
    const REAL *x;
    int ldx;
    const REAL *h, *c, *WihT, *WhhT, *bx, *bh; /* bx (GH): input-side biases, bh (H): b_hn */
    REAL *hout, *cout, *save, *s, *gh;         /* s, gh (B, GH): scratch */
    /* backward */
    const REAL *Wih, *Whh, *dh, *dc, *hnew, *cnew;
    REAL *dx, *dhp, *dcp, *dWih, *dWhh, *dbih, *dbhh, *gi, *gr, *dhd;
    REAL *zero, *dcs; /* (H) zeros, (H) scratch */
} SUF(step_t);

/* Gate math of one batch row over hidden units [j0, j1). Each loop takes one restrict pointer
 * per gate block: s[H + j]-style offsets made GCC gather and scatter (the profile showed
 * vscatterdps in the GRU loop). sv (4H) is always written: the inference step points it at
 * scratch, which costs less than a second copy of each loop. */
RK_VEC static void SUF(gru_gates_ra)(int j0, int j1, RK_C s0, RK_C s1, RK_C s2, RK_C b0,
                                     RK_C b1, RK_C b2, RK_C e0, RK_C bh, RK_C hp,
                                     REAL *restrict ho, REAL *restrict v0, REAL *restrict v1,
                                     REAL *restrict v2, REAL *restrict v3) {
    RK_IVDEP for (int j = j0; j < j1; j++) {
        REAL r = SIGM(s0[j] + b0[j]), z = SIGM(s1[j] + b1[j]);
        REAL e = e0[j] + bh[j];
        REAL nn = TANH(s2[j] + b2[j] + r * e);
        ho[j] = nn + z * (hp[j] - nn);
        v0[j] = r; v1[j] = z; v2[j] = nn; v3[j] = e;
    }
}

RK_VEC static void SUF(lstm_gates)(int j0, int j1, RK_C s0, RK_C s1, RK_C s2, RK_C s3, RK_C b0,
                                   RK_C b1, RK_C b2, RK_C b3, RK_C cp, REAL *restrict co,
                                   REAL *restrict ho, REAL *restrict v0, REAL *restrict v1,
                                   REAL *restrict v2, REAL *restrict v3) {
    RK_IVDEP for (int j = j0; j < j1; j++) {
        REAL i = SIGM(s0[j] + b0[j]), f = SIGM(s1[j] + b1[j]);
        REAL g = TANH(s2[j] + b2[j]), o = SIGM(s3[j] + b3[j]);
        REAL cn = f * cp[j] + i * g;
        co[j] = cn; ho[j] = o * TANH(cn);
        v0[j] = i; v1[j] = f; v2[j] = g; v3[j] = o;
    }
}

/* reset_after=0 GRU: r, z = sigm(s + b) in place, rh = r h */
RK_VEC static void SUF(gru_gates_rz)(int H, REAL *restrict s, RK_C bx, RK_C hp,
                                     REAL *restrict rh) {
    RK_IVDEP for (int j = 0; j < 2 * H; j++) s[j] = SIGM(s[j] + bx[j]);
    RK_IVDEP for (int j = 0; j < H; j++) rh[j] = s[j] * hp[j];
}

/* reset_after=0 GRU, after W_hn (r h) joined s2: n and h_new */
RK_VEC static void SUF(gru_gates_n)(int H, RK_C s0, RK_C s1, RK_C s2, RK_C b2, RK_C rh, RK_C hp,
                                    REAL *restrict ho, REAL *restrict v0, REAL *restrict v1,
                                    REAL *restrict v2, REAL *restrict v3) {
    RK_IVDEP for (int j = 0; j < H; j++) {
        REAL z = s1[j], nn = TANH(s2[j] + b2[j]);
        ho[j] = nn + z * (hp[j] - nn);
        v0[j] = s0[j]; v1[j] = z; v2[j] = nn; v3[j] = rh[j];
    }
}

RK_VEC static void SUF(elman_gates)(int act, int j0, int j1, RK_C s, RK_C bx, REAL *restrict ho) {
    switch (act) {
    case 0: RK_IVDEP for (int j = j0; j < j1; j++) ho[j] = TANH(s[j] + bx[j]); break;
    case 1: RK_IVDEP for (int j = j0; j < j1; j++) ho[j] = SIGM(s[j] + bx[j]); break;
    case 2:
        RK_IVDEP for (int j = j0; j < j1; j++) {
            REAL v = s[j] + bx[j];
            ho[j] = v > 0 ? v : 0;
        }
        break;
    default: RK_IVDEP for (int j = j0; j < j1; j++) ho[j] = s[j] + bx[j]; break;
    }
}

/* Forward, hidden units [j0, j1) of every gate. reset_after=0 GRU needs all of r h before its
 * n gate, so it runs as one range. p->save is never null for GRU/LSTM (see run_fwd). */
RK_VEC static void SUF(step_fwd_cols)(const SUF(step_t) *p, int j0, int j1) {
    int B = p->B, D = p->D, H = p->H, n = j1 - j0;
    int G = p->kind == 0 ? 1 : p->kind == 1 ? 3 : 4, GH = G * H;
    REAL *S = p->s, *Gh = p->gh;
    /* gate g's strips start at g*H*K (K = D for W_ih, H for W_hh); column j0 of a gate is at
     * strip j0 / RK_VL */
    size_t ji = (size_t)j0 * D, jh = (size_t)j0 * H;
    for (int g = 0; g < G; g++) {
        int col = g * H + j0;
        const REAL *wi = p->WihT + (size_t)g * H * D + ji, *wh = p->WhhT + (size_t)g * H * H + jh;
        SUF(sp_proj_strips)(B, n, D, p->x, p->ldx, wi, 0, S + col, GH);
        if (p->kind == 1 && g == 2) {
            if (p->opt) SUF(sp_proj_strips)(B, n, H, p->h, H, wh, 0, Gh + col, GH);
        } else {
            SUF(sp_proj_strips)(B, n, H, p->h, H, wh, 1, S + col, GH);
        }
    }
    RK_C bx = p->bx;
    if (p->kind == 1 && !p->opt) {
        /* reset_after=0: r, z; then n = tanh(W_in x + W_hn (r h) + b_in + b_hn) */
        REAL *RH = Gh; /* r h (B, H) in the scratch's first columns */
        for (int b = 0; b < B; b++)
            SUF(gru_gates_rz)(H, S + (size_t)b * GH, bx, p->h + (size_t)b * H,
                              RH + (size_t)b * GH);
        SUF(sp_proj_strips)(B, H, H, RH, GH, p->WhhT + (size_t)2 * H * H, 1, S + 2 * H, GH);
    }
    for (int b = 0; b < B; b++) {
        const REAL *s = S + (size_t)b * GH, *hp = p->h + (size_t)b * H;
        REAL *ho = p->hout + (size_t)b * H, *sv = p->save ? p->save + (size_t)b * 4 * H : NULL;
        if (p->kind == 0) {
            SUF(elman_gates)(p->opt, j0, j1, s, bx, ho);
        } else if (p->kind == 1 && p->opt) {
            SUF(gru_gates_ra)(j0, j1, s, s + H, s + 2 * H, bx, bx + H, bx + 2 * H,
                              Gh + (size_t)b * GH + 2 * H, p->bh, hp, ho, sv, sv + H,
                              sv + 2 * H, sv + 3 * H);
        } else if (p->kind == 1) {
            SUF(gru_gates_n)(H, s, s + H, s + 2 * H, bx + 2 * H, Gh + (size_t)b * GH, hp, ho,
                             sv, sv + H, sv + 2 * H, sv + 3 * H);
        } else {
            SUF(lstm_gates)(j0, j1, s, s + H, s + 2 * H, s + 3 * H, bx, bx + H, bx + 2 * H,
                            bx + 3 * H, p->c + (size_t)b * H, p->cout + (size_t)b * H, ho, sv,
                            sv + H, sv + 2 * H, sv + 3 * H);
        }
    }
}

/* The backward's gate rows, one restrict pointer per gate block as in the forward. */
RK_VEC static void SUF(gru_bwd_row)(int H, int ra, RK_C v, RK_C hp, RK_C sv, REAL *restrict gi,
                                    REAL *restrict gr, REAL *restrict dd) {
    RK_C sr = sv;
    RK_C sz = sv + H;
    RK_C sn = sv + 2 * H;
    RK_C se = sv + 3 * H;
    REAL *restrict i0 = gi, *restrict i1 = gi + H, *restrict i2 = gi + 2 * H;
    REAL *restrict r0 = gr, *restrict r1 = gr + H, *restrict r2 = gr + 2 * H;
    if (ra) { /* r multiplies W_hn h + b_hn = e */
        RK_IVDEP for (int j = 0; j < H; j++) {
            REAL r = sr[j], z = sz[j], nn = sn[j];
            REAL dan = v[j] * (1 - z) * (1 - nn * nn);
            REAL daz = v[j] * (hp[j] - nn) * z * (1 - z);
            REAL dar = dan * se[j] * r * (1 - r);
            i0[j] = dar; r0[j] = dar; i1[j] = daz; r1[j] = daz;
            i2[j] = dan; r2[j] = dan * r;
            dd[j] = v[j] * z;
        }
    } else { /* r's part waits for d(r h) (step_bwd_gates) */
        RK_IVDEP for (int j = 0; j < H; j++) {
            REAL z = sz[j], nn = sn[j];
            REAL dan = v[j] * (1 - z) * (1 - nn * nn);
            REAL daz = v[j] * (hp[j] - nn) * z * (1 - z);
            i1[j] = daz; r1[j] = daz; i2[j] = dan; r2[j] = dan;
            dd[j] = v[j] * z;
        }
    }
}

RK_VEC static void SUF(lstm_bwd_row)(int H, RK_C v, RK_C dcn, RK_C cp, RK_C cn, RK_C sv,
                                     REAL *restrict gi, REAL *restrict dcp) {
    RK_C si = sv;
    RK_C sf = sv + H;
    RK_C sg = sv + 2 * H;
    RK_C so = sv + 3 * H;
    REAL *restrict g0 = gi, *restrict g1 = gi + H, *restrict g2 = gi + 2 * H;
    REAL *restrict g3 = gi + 3 * H;
    RK_IVDEP for (int j = 0; j < H; j++) {
        REAL i = si[j], f = sf[j], g = sg[j], o = so[j];
        REAL tc = TANH(cn[j]), vh = v[j];
        REAL dct = dcn[j] + vh * o * (1 - tc * tc);
        g0[j] = dct * g * i * (1 - i);
        g1[j] = dct * cp[j] * f * (1 - f);
        g2[j] = dct * i * (1 - g * g);
        g3[j] = vh * tc * o * (1 - o);
        dcp[j] = dct * f;
    }
}

/* Backward, first part (every column, one thread): the gate pre-activation gradients
 * gi (B, GH) (input side: dx, dW_ih, db_ih) and gr (B, GH) (hidden side: dh, dW_hh, db_hh; the
 * same as gi except the GRU's n rows), the direct part of dh_prev dhd (B, H), dc_prev, and the
 * bias gradients. */
RK_VEC static void SUF(step_bwd_gates)(const SUF(step_t) *p) {
    int B = p->B, H = p->H, G = p->kind == 0 ? 1 : p->kind == 1 ? 3 : 4, GH = G * H;
    for (int b = 0; b < B; b++) {
        RK_C v = p->dh ? p->dh + (size_t)b * H : NULL;
        REAL *restrict gi = p->gi + (size_t)b * GH, *restrict gr = p->gr + (size_t)b * GH;
        REAL *restrict dd = p->dhd + (size_t)b * H;
        RK_C sv = p->save ? p->save + (size_t)b * 4 * H : NULL;
        if (p->kind == 0) {
            RK_C hn = p->hnew + (size_t)b * H;
            switch (p->opt) {
            case 0: RK_IVDEP for (int j = 0; j < H; j++) gi[j] = v[j] * (1 - hn[j] * hn[j]); break;
            case 1: RK_IVDEP for (int j = 0; j < H; j++) gi[j] = v[j] * hn[j] * (1 - hn[j]); break;
            case 2: RK_IVDEP for (int j = 0; j < H; j++) gi[j] = hn[j] > 0 ? v[j] : 0; break;
            default: RK_IVDEP for (int j = 0; j < H; j++) gi[j] = v[j]; break;
            }
            memcpy(gr, gi, (size_t)H * sizeof(REAL));
            memset(dd, 0, (size_t)H * sizeof(REAL));
        } else if (p->kind == 1) {
            SUF(gru_bwd_row)(H, p->opt, v, p->h + (size_t)b * H, sv, gi, gr, dd);
        } else {
            /* an absent dh or dc reads zeros; an unwanted dc_prev goes to scratch */
            SUF(lstm_bwd_row)(H, v ? v : p->zero, p->dc ? p->dc + (size_t)b * H : p->zero,
                              p->c + (size_t)b * H, p->cnew + (size_t)b * H, sv, gi,
                              p->dcp ? p->dcp + (size_t)b * H : p->dcs);
            memcpy(gr, gi, (size_t)GH * sizeof(REAL));
            memset(dd, 0, (size_t)H * sizeof(REAL));
        }
    }
    if (p->kind == 1 && !p->opt) {
        /* reset_after=0: d(r h) = dan W_hn, then the r gate and r's share of dh_prev */
        REAL *drh = p->s; /* (B, H) in the forward's scratch, unused here */
        SUF(sp_proj)(B, H, H, p->gi + 2 * H, GH, p->Whh + (size_t)2 * H * H, H, 0, drh, H);
        for (int b = 0; b < B; b++) {
            RK_C sv = p->save + (size_t)b * 4 * H;
            RK_C hp = p->h + (size_t)b * H;
            RK_C d = drh + (size_t)b * H;
            REAL *restrict gi = p->gi + (size_t)b * GH, *restrict gr = p->gr + (size_t)b * GH;
            REAL *restrict dd = p->dhd + (size_t)b * H;
            RK_IVDEP for (int j = 0; j < H; j++) {
                REAL r = sv[j], dar = d[j] * hp[j] * r * (1 - r);
                gi[j] = dar; gr[j] = dar;
                dd[j] += d[j] * r;
            }
        }
    }
    for (int t = 0; t < 2; t++) {
        REAL *db = t ? p->dbhh : p->dbih;
        const REAL *src = t ? p->gr : p->gi;
        if (!db) continue;
        memcpy(db, src, (size_t)GH * sizeof(REAL));
        for (int b = 1; b < B; b++) SUF(add_rows)(GH, db, src + (size_t)b * GH);
    }
}

/* Backward, second part: input columns [d0, d1) (dx, dW_ih) and hidden columns [j0, j1)
 * (dh_prev, dW_hh); the ranges of different threads are disjoint. */
RK_VEC static void SUF(step_bwd_cols)(const SUF(step_t) *p, int d0, int d1, int j0, int j1) {
    int B = p->B, D = p->D, H = p->H, G = p->kind == 0 ? 1 : p->kind == 1 ? 3 : 4, GH = G * H;
    if (p->dx && d1 > d0)
        SUF(sp_proj)(B, d1 - d0, GH, p->gi, GH, p->Wih + d0, D, 0, p->dx + d0, D);
    if (p->dWih && d1 > d0)
        SUF(sp_outer)(B, GH, d1 - d0, p->gi, GH, p->x + d0, p->ldx, p->dWih + d0, D);
    if (j1 <= j0) return;
    /* reset_after=0 GRU: the n rows of W_hh meet r h (saved), and reached h through drh */
    int rb = p->kind == 1 && !p->opt, rows = rb ? 2 * H : GH;
    if (p->dhp) {
        for (int b = 0; b < B; b++)
            memcpy(p->dhp + (size_t)b * H + j0, p->dhd + (size_t)b * H + j0,
                   (size_t)(j1 - j0) * sizeof(REAL));
        SUF(sp_proj)(B, j1 - j0, rows, p->gr, GH, p->Whh + j0, H, 1, p->dhp + j0, H);
    }
    if (p->dWhh) {
        SUF(sp_outer)(B, rows, j1 - j0, p->gr, GH, p->h + j0, H, p->dWhh + j0, H);
        if (rb)
            SUF(sp_outer)(B, H, j1 - j0, p->gr + 2 * H, GH, p->save + 3 * H + j0, 4 * H,
                          p->dWhh + (size_t)2 * H * H + j0, H);
    }
}
