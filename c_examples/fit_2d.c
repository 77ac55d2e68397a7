/*
 * fit_2d: fit a Schrödinger-bridge model to a 2-D data set and draw samples, through the C ABI.
 *
 *   fit_2d [M [N_SAMPLES [OUT]]]
 *
 * M training points (default 400) on a noisy circle of radius 1 are fitted with the plain
 * (single-head) bridge at eps = 0.01, in double and in single precision. N_SAMPLES chains
 * (default 200) of the data-aware split-step sampler (paper 001 eq. 21) then run 20 steps each,
 * one RNG stream per chain. The program prints the mean radius of the data, of the projected
 * states and of the noisy half-steps, and writes the samples (x y half_x half_y, %.17g) to OUT
 * when given. It also checks a few invariants (weights sum to one, mean in the data's range) and
 * exits non-zero on any failure.
 *
 * Every buffer is the caller's: the model image (16-byte aligned, from aligned_alloc), the work
 * space (sized by the library's *_workspace_len / sb_workspace_lens queries) and the outputs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbridge.h"

#define TWO_PI 6.283185307179586

/* Reports a failed call and jumps to cleanup. */
#define CHECK(call)                                                                  \
    do {                                                                             \
        SbStatus st_ = (call);                                                       \
        if (st_ != SB_OK) {                                                          \
            fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #call,     \
                    (int)st_, sb_status_message((int32_t)st_));                      \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

/* A 16-byte aligned buffer of at least `len` bytes (C11 wants a multiple of the alignment). */
static void *alloc_image(size_t len) {
    size_t rounded = (len + (SB_IMAGE_ALIGN - 1)) / SB_IMAGE_ALIGN * SB_IMAGE_ALIGN;
    return aligned_alloc(SB_IMAGE_ALIGN, rounded == 0 ? SB_IMAGE_ALIGN : rounded);
}

/* A small deterministic generator for the data set (not the library's RNG). */
static uint64_t lcg_state = 0x853c49e6748fea9bULL;
static double uniform01(void) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(lcg_state >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) {
    double u1 = uniform01(), u2 = uniform01();
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

int main(int argc, char **argv) {
    size_t m = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 400;
    size_t n_samples = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 200;
    const char *out_path = argc > 3 ? argv[3] : NULL;
    const size_t d = 2, steps = 20;
    int ok = 0;

    double *data = NULL, *work = NULL, *samples = NULL, *w = NULL, *qwork = NULL;
    float *data32 = NULL, *work32 = NULL;
    uint8_t *image = NULL, *image32 = NULL;
    uint32_t nb_off[2], nb[2], tg_off[2], tg[2];
    FILE *out = NULL;

    if (m < 10 || n_samples == 0) {
        fprintf(stderr, "usage: fit_2d [M>=10 [N_SAMPLES>=1 [OUT]]]\n");
        return 2;
    }
    printf("sbridge %s (header %s)\n", sb_version(), SBRIDGE_VERSION);

    /* Training data: x[j*d + c], a noisy unit circle. */
    data = malloc(m * d * sizeof *data);
    data32 = malloc(m * d * sizeof *data32);
    if (!data || !data32) goto fail;
    double data_radius = 0.0;
    for (size_t j = 0; j < m; j++) {
        double t = TWO_PI * uniform01(), r = 1.0 + 0.05 * gauss();
        data[j * d] = r * cos(t);
        data[j * d + 1] = r * sin(t);
        data32[j * d] = (float)data[j * d];
        data32[j * d + 1] = (float)data[j * d + 1];
        data_radius += hypot(data[j * d], data[j * d + 1]) / (double)m;
    }

    /* The single-head layout (the plain bridge): sizes first, then the caller's arrays. */
    SbLayoutSizes sizes;
    SbLayout layout;
    CHECK(sb_layout_single_head_sizes(d, &sizes));
    if (sizes.n_heads != 1 || sizes.nb_len != d || sizes.tg_len != d) goto fail;
    CHECK(sb_layout_single_head(d, &sizes, nb_off, nb, tg_off, tg, &layout));

    /* Fit (double): image length, aligned image, fit work space. */
    size_t image_len = 0;
    CHECK(sb_image_len_f64(&layout, m, 0, 0, &image_len));
    image = alloc_image(image_len);
    work = malloc(sb_fit_workspace_len(m) * sizeof *work);
    if (!image || !work) goto fail;
    SbFitConfig cfg = {.eps = 0.01, .beta = 0.0, .variable_bandwidth = 0, .tol = 0.0, .max_iter = 0};
    SbFitReport report;
    CHECK(sb_fit_model_f64(data, m, d, NULL, &layout, &cfg, image, image_len, work,
                           sb_fit_workspace_len(m), &report));
    printf("fit f64: M = %zu, %u Sinkhorn iterations, residual %.3g, image %zu bytes\n", m,
           report.max_iterations, report.max_residual, report.image_len);

    SbModel model;
    SbModelInfo info;
    SbWorkspaceLens lens;
    CHECK(sb_model_open_f64(image, image_len, &model));
    CHECK(sb_model_info(&model, &info));
    CHECK(sb_workspace_lens(&model, &lens));
    if (info.d != d || info.m != m || info.n_heads != 1 || info.float_size != 8) goto fail;

    /* One bridge query: the weights at the origin sum to one, the mean lies in the data's box. */
    double origin[2] = {0.0, 0.0}, mean[2];
    w = malloc(m * sizeof *w);
    qwork = malloc(lens.query * sizeof *qwork);
    if (!w || !qwork) goto fail;
    CHECK(sb_weights_f64(&model, 0, origin, d, w, m, qwork, lens.query));
    CHECK(sb_mean_f64(&model, 0, origin, d, mean, d, qwork, lens.query));
    double wsum = 0.0;
    for (size_t j = 0; j < m; j++) wsum += w[j];
    printf("weights at the origin sum to %.15f; mean there (%.4f, %.4f)\n", wsum, mean[0], mean[1]);
    if (fabs(wsum - 1.0) > 1e-12 || fabs(mean[0]) > 1.5 || fabs(mean[1]) > 1.5) goto fail;

    /* Sampling: one chain per sample, each with its own stream, from a training point. */
    free(work);
    work = malloc(lens.chain * sizeof *work);
    samples = malloc(n_samples * 2 * d * sizeof *samples);
    if (!work || !samples) goto fail;
    SbStepConfig step = {.scheme = SB_SCHEME_COVARIANCE, .dtau = 0.0, .noise = SB_NOISE_GLOBAL};
    double r_proj = 0.0, r_half = 0.0;
    for (size_t i = 0; i < n_samples; i++) {
        SbRng rng;
        double *x = samples + i * 2 * d, *half = x + d;
        CHECK(sb_rng_seed(2024, i, &rng));
        memcpy(x, data + (i * 7 % m) * d, d * sizeof *x);
        CHECK(sb_chain_f64(&model, &step, NULL, NULL, NULL, NULL, 0, x, half, d, steps, NULL, NULL,
                           &rng, work, lens.chain));
        r_proj += hypot(x[0], x[1]) / (double)n_samples;
        r_half += hypot(half[0], half[1]) / (double)n_samples;
    }
    printf("mean radius: data %.4f, projected %.4f, half-step %.4f (%zu chains x %zu steps)\n",
           data_radius, r_proj, r_half, n_samples, steps);
    if (fabs(r_proj - data_radius) > 0.1 || fabs(r_half - data_radius) > 0.2) goto fail;

    /* The same in single precision (what a Cortex-M4F would run). */
    size_t image32_len = 0;
    CHECK(sb_image_len_f32(&layout, m, 0, 0, &image32_len));
    image32 = alloc_image(image32_len);
    work32 = malloc(sb_fit_workspace_len(m) * sizeof *work32);
    if (!image32 || !work32) goto fail;
    SbFitConfig cfg32 = {.eps = 0.01, .beta = 0.0, .variable_bandwidth = 0, .tol = 0.0, .max_iter = 0};
    CHECK(sb_fit_model_f32(data32, m, d, NULL, &layout, &cfg32, image32, image32_len, work32,
                           sb_fit_workspace_len(m), &report));
    SbModel model32;
    CHECK(sb_model_open_f32(image32, image32_len, &model32));
    CHECK(sb_workspace_lens(&model32, &lens));
    free(work32);
    work32 = malloc(lens.chain * sizeof *work32);
    if (!work32) goto fail;
    double r32 = 0.0;
    for (size_t i = 0; i < n_samples; i++) {
        SbRng rng;
        float x[2], half[2];
        CHECK(sb_rng_seed(2024, i, &rng));
        memcpy(x, data32 + (i * 7 % m) * d, sizeof x);
        CHECK(sb_chain_f32(&model32, &step, NULL, NULL, NULL, NULL, 0, x, half, d, steps, NULL,
                           NULL, &rng, work32, lens.chain));
        r32 += hypot((double)x[0], (double)x[1]) / (double)n_samples;
    }
    printf("fit f32: %u Sinkhorn iterations, residual %.3g; projected mean radius %.4f\n",
           report.max_iterations, report.max_residual, r32);
    if (fabs(r32 - data_radius) > 0.1) goto fail;

    if (out_path) {
        out = fopen(out_path, "w");
        if (!out) {
            perror(out_path);
            goto fail;
        }
        for (size_t i = 0; i < n_samples; i++) {
            const double *s = samples + i * 2 * d;
            fprintf(out, "%.17g %.17g %.17g %.17g\n", s[0], s[1], s[2], s[3]);
        }
        if (fclose(out) != 0) {
            out = NULL;
            goto fail;
        }
        out = NULL;
    }
    ok = 1;

fail:
    if (out) fclose(out);
    free(data);
    free(data32);
    free(work);
    free(work32);
    free(samples);
    free(w);
    free(qwork);
    free(image);
    free(image32);
    if (!ok) fprintf(stderr, "fit_2d: FAILED\n");
    return ok ? 0 : 1;
}
