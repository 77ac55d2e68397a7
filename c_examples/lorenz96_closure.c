/*
 * lorenz96_closure: the stochastic subgrid closure of the localized paper (000 §5.1) in a host
 * model's own time-step loop, through the C ABI.
 *
 *   lorenz96_closure M STEPS TRAIN_OUT IMAGE_OUT LOG_OUT
 *
 * 1. Training data. The two-scale Lorenz-96 model (K = 8 slow variables z_k, J = 8 fast
 *    variables per sector, F = 20, b = c = 10, h = 1; eqs. 59a/b) is integrated with RK4 at
 *    Dt = 5e-4 from a fixed initial state, spun up for 2 time units, and sampled every 0.01 time
 *    units: M pairs (z, psi) with psi = (z(t+Dt) - z(t))/Dt - G(z(t)) (eq. 61), where
 *    G_k(z) = -z_{k-1}(z_{k-2} - z_{k+1}) - z_k + F is the resolved tendency (eq. 60).
 *    TRAIN_OUT receives them: uint64 M, uint64 2K, then M rows of 2K doubles (z then psi).
 * 2. Fit. The slow/closure layout sb_layout_closure(K, 2, 1): state x = (z, psi), one head per
 *    psi_k that sees z_{k-1..k+1} and psi_{k-1..k+1}; per-coordinate scales = the standard
 *    deviation of each z and psi coordinate; eps = 0.1. IMAGE_OUT receives the model image
 *    bytes (the same bytes a Fortran model, or a microcontroller's flash, would load).
 * 3. Closure model (eq. 62): z <- z + (G(z) + psi) dt with dt = 10 Dt = 5e-3, STEPS steps from
 *    the first training pair. Before every step psi = sb_closure_f64(z* = z, n_c = 10 sweeps,
 *    warm start from the previous psi), RNG stream (seed 2024, stream 0).
 *    LOG_OUT receives: uint64 K, STEPS, seed, stream, sweeps, init; double dt; the initial psi
 *    (K doubles); then for every step the z passed to the closure (K doubles) and the psi it
 *    returned (K doubles). tests/c_abi.rs replays these closure calls with the Rust API and
 *    compares the bits; c_examples/lorenz96_closure.f90 runs the same loop from Fortran.
 *
 * Prints the mean and standard deviation of z over the closure run next to those of the
 * training data.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbridge.h"

enum { K = 8, J = 8, NX = K * (J + 1), D = 2 * K };
static const double F = 20.0, B = 10.0, C = 10.0, H = 1.0;
static const double DT_FULL = 5e-4;      /* RK4 step of the two-scale model */
static const double DT_CLOSURE = 5e-3;   /* Euler step of the closure model (10 Dt) */
static const size_t SPINUP_STEPS = 4000; /* 2 time units */
static const size_t SAMPLE_EVERY = 20;   /* 0.01 time units */
static const uint64_t SEED = 2024, STREAM = 0;
static const size_t SWEEPS = 10;

#define CHECK(call)                                                                  \
    do {                                                                             \
        SbStatus st_ = (call);                                                       \
        if (st_ != SB_OK) {                                                          \
            fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #call,     \
                    (int)st_, sb_status_message((int32_t)st_));                      \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

static void *alloc_image(size_t len) {
    size_t rounded = (len + (SB_IMAGE_ALIGN - 1)) / SB_IMAGE_ALIGN * SB_IMAGE_ALIGN;
    return aligned_alloc(SB_IMAGE_ALIGN, rounded == 0 ? SB_IMAGE_ALIGN : rounded);
}

/* Resolved tendency (60), periodic in k. */
static void resolved_tendency(const double *z, double *g) {
    for (int k = 0; k < K; k++) {
        int km1 = (k + K - 1) % K, km2 = (k + 2 * K - 2) % K, kp1 = (k + 1) % K;
        g[k] = -z[km1] * (z[km2] - z[kp1]) - z[k] + F;
    }
}

/* Full two-scale tendency (59a/b); state = [z_0..z_{K-1}, y_{0,0}..y_{J-1,0}, y_{0,1}, ...],
 * the fast variables form one ring of K*J values. */
static void tendency(const double *s, double *out) {
    const double *z = s, *y = s + K;
    double *dz = out, *dy = out + K;
    const double hcb = H * C / B, cb = C * B;
    const int n = K * J;
    resolved_tendency(z, dz);
    for (int k = 0; k < K; k++) {
        double sum = 0.0;
        for (int j = 0; j < J; j++) sum += y[k * J + j];
        dz[k] -= hcb * sum;
    }
    for (int i = 0; i < n; i++) {
        int im1 = (i + n - 1) % n, ip1 = (i + 1) % n, ip2 = (i + 2) % n;
        dy[i] = -cb * y[ip1] * (y[ip2] - y[im1]) - C * y[i] + hcb * z[i / J];
    }
}

static void rk4_step(double *s, double dt) {
    double k1[NX], k2[NX], k3[NX], k4[NX], tmp[NX];
    tendency(s, k1);
    for (int i = 0; i < NX; i++) tmp[i] = s[i] + 0.5 * dt * k1[i];
    tendency(tmp, k2);
    for (int i = 0; i < NX; i++) tmp[i] = s[i] + 0.5 * dt * k2[i];
    tendency(tmp, k3);
    for (int i = 0; i < NX; i++) tmp[i] = s[i] + dt * k3[i];
    tendency(tmp, k4);
    for (int i = 0; i < NX; i++) s[i] += dt / 6.0 * (k1[i] + 2.0 * (k2[i] + k3[i]) + k4[i]);
}

static int write_u64s(FILE *f, const uint64_t *v, size_t n) { return fwrite(v, sizeof *v, n, f) == n; }
static int write_f64s(FILE *f, const double *v, size_t n) { return fwrite(v, sizeof *v, n, f) == n; }

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: lorenz96_closure M STEPS TRAIN_OUT IMAGE_OUT LOG_OUT\n");
        return 2;
    }
    const size_t m = (size_t)strtoul(argv[1], NULL, 10);
    const size_t steps = (size_t)strtoul(argv[2], NULL, 10);
    if (m < 10 || steps == 0) {
        fprintf(stderr, "lorenz96_closure: need M >= 10 and STEPS >= 1\n");
        return 2;
    }
    int ok = 0;
    double *data = NULL, *work = NULL;
    uint8_t *image = NULL;
    uint32_t *nb_off = NULL, *nb = NULL, *tg_off = NULL, *tg = NULL;
    FILE *f = NULL;

    /* 1. Training pairs from the full model. */
    data = malloc(m * D * sizeof *data);
    if (!data) goto fail;
    double state[NX];
    for (int k = 0; k < K; k++) state[k] = F * (0.5 + 0.4 * sin(1.0 + 2.0 * k));
    for (int i = K; i < NX; i++) state[i] = 0.1 * sin(0.7 * i);
    for (size_t n = 0; n < SPINUP_STEPS; n++) rk4_step(state, DT_FULL);
    for (size_t j = 0; j < m; j++) {
        if (j > 0)
            for (size_t n = 0; n < SAMPLE_EVERY; n++) rk4_step(state, DT_FULL);
        double ahead[NX], g[K];
        memcpy(ahead, state, sizeof state);
        rk4_step(ahead, DT_FULL);
        resolved_tendency(state, g);
        for (int k = 0; k < K; k++) {
            data[j * D + k] = state[k];
            data[j * D + K + k] = (ahead[k] - state[k]) / DT_FULL - g[k];
        }
    }
    for (int i = 0; i < NX; i++)
        if (!isfinite(state[i])) goto fail;

    /* Per-coordinate scales: the standard deviation of each z and psi coordinate. */
    double mean[D] = {0}, scales[D] = {0};
    for (size_t j = 0; j < m; j++)
        for (int c = 0; c < D; c++) mean[c] += data[j * D + c];
    for (int c = 0; c < D; c++) mean[c] /= (double)m;
    for (size_t j = 0; j < m; j++)
        for (int c = 0; c < D; c++) scales[c] += (data[j * D + c] - mean[c]) * (data[j * D + c] - mean[c]);
    for (int c = 0; c < D; c++) scales[c] = sqrt(scales[c] / (double)(m - 1));

    f = fopen(argv[3], "wb");
    if (!f) {
        perror(argv[3]);
        goto fail;
    }
    const uint64_t train_header[2] = {m, D};
    if (!write_u64s(f, train_header, 2) || !write_f64s(f, data, m * D)) goto fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    f = NULL;

    /* 2. The closure layout and the fit. */
    SbLayoutSizes sizes;
    SbLayout layout;
    CHECK(sb_layout_closure_sizes(K, 2, 1, &sizes));
    nb_off = malloc((sizes.n_heads + 1) * sizeof *nb_off);
    nb = malloc(sizes.nb_len * sizeof *nb);
    tg_off = malloc((sizes.n_heads + 1) * sizeof *tg_off);
    tg = malloc(sizes.tg_len * sizeof *tg);
    if (!nb_off || !nb || !tg_off || !tg) goto fail;
    CHECK(sb_layout_closure(K, 2, 1, &sizes, nb_off, nb, tg_off, tg, &layout));

    size_t image_len = 0;
    CHECK(sb_image_len_f64(&layout, m, 0, 1, &image_len));
    image = alloc_image(image_len);
    work = malloc(sb_fit_workspace_len(m) * sizeof *work);
    if (!image || !work) goto fail;
    SbFitConfig cfg = {.eps = 0.1, .beta = 0.0, .variable_bandwidth = 0, .tol = 0.0, .max_iter = 0};
    SbFitReport report;
    CHECK(sb_fit_model_f64(data, m, D, scales, &layout, &cfg, image, image_len, work,
                           sb_fit_workspace_len(m), &report));
    printf("fit: K = %d, M = %zu pairs, %zu heads, max %u Sinkhorn iterations, residual %.3g, "
           "image %zu bytes\n",
           K, m, report.n_heads, report.max_iterations, report.max_residual, report.image_len);
    f = fopen(argv[4], "wb");
    if (!f) {
        perror(argv[4]);
        goto fail;
    }
    if (fwrite(image, 1, image_len, f) != image_len) goto fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    f = NULL;

    /* 3. The closure model's time-step loop, one closure call per step. */
    SbModel model;
    SbWorkspaceLens lens;
    CHECK(sb_model_open_f64(image, image_len, &model));
    CHECK(sb_workspace_lens(&model, &lens));
    free(work);
    work = malloc(lens.closure * sizeof *work);
    if (!work) goto fail;
    size_t z_coords[K];
    for (int k = 0; k < K; k++) z_coords[k] = (size_t)k;
    SbClosureConfig ccfg = {.sweeps = SWEEPS, .init = SB_INIT_WARM, .scheme = SB_SCHEME_ISOTROPIC,
                            .noise = SB_NOISE_GLOBAL};
    SbRng rng;
    CHECK(sb_rng_seed(SEED, STREAM, &rng));

    double z[K], psi[K], g[K];
    memcpy(z, data, sizeof z);
    memcpy(psi, data + K, sizeof psi);
    f = fopen(argv[5], "wb");
    if (!f) {
        perror(argv[5]);
        goto fail;
    }
    const uint64_t log_header[6] = {K, steps, SEED, STREAM, SWEEPS, SB_INIT_WARM};
    const double dt = DT_CLOSURE;
    if (!write_u64s(f, log_header, 6) || !write_f64s(f, &dt, 1) || !write_f64s(f, psi, K)) goto fail;

    double zsum = 0.0, zsq = 0.0;
    for (size_t n = 0; n < steps; n++) {
        CHECK(sb_closure_f64(&model, &ccfg, z_coords, K, z, psi, K, &rng, work, lens.closure));
        if (!write_f64s(f, z, K) || !write_f64s(f, psi, K)) goto fail;
        resolved_tendency(z, g);
        for (int k = 0; k < K; k++) {
            z[k] += (g[k] + psi[k]) * dt;
            if (!isfinite(z[k]) || fabs(z[k]) > 1e3) {
                fprintf(stderr, "closure model blew up at step %zu\n", n + 1);
                goto fail;
            }
            zsum += z[k];
            zsq += z[k] * z[k];
        }
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    f = NULL;

    double tmean = 0.0, tsq = 0.0;
    for (size_t j = 0; j < m; j++)
        for (int k = 0; k < K; k++) {
            tmean += data[j * D + k];
            tsq += data[j * D + k] * data[j * D + k];
        }
    const double nz = (double)(steps * K), nt = (double)(m * K);
    printf("closure run: %zu steps of dt = %g, n_c = %zu: z mean %.3f std %.3f "
           "(training data: mean %.3f std %.3f)\n",
           steps, dt, SWEEPS, zsum / nz, sqrt(zsq / nz - (zsum / nz) * (zsum / nz)), tmean / nt,
           sqrt(tsq / nt - (tmean / nt) * (tmean / nt)));
    ok = 1;

fail:
    if (f) fclose(f);
    free(data);
    free(work);
    free(image);
    free(nb_off);
    free(nb);
    free(tg_off);
    free(tg);
    if (!ok) fprintf(stderr, "lorenz96_closure: FAILED\n");
    return ok ? 0 : 1;
}
