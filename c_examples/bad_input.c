/*
 * bad_input: what the C ABI does with bad input, from C (run under valgrind by tests/c_abi.rs).
 *
 * Null pointers, zero and huge sizes, short buffers, misaligned pointers and model images, a
 * corrupt image, NaN states and conditioning values, gradient callbacks that return NaN or fail,
 * overlapping buffers and out-of-range enumerations: every call must return its own status and
 * leave every output exactly as it was (checked byte for byte against a sentinel copy). Prints
 * one line per failed expectation and exits with the number of failures (0 = all passed).
 * tests/c_abi.rs covers every pointer argument of every entry point from Rust; this program is
 * the representative subset a C user would write.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbridge.h"

static int failures = 0, checks = 0;

static void expect_status(SbStatus got, SbStatus want, const char *what, int line) {
    checks++;
    if (got != want) {
        failures++;
        printf("FAILED line %d: %s: got %d (%s), expected %d (%s)\n", line, what, (int)got,
               sb_status_message((int32_t)got), (int)want, sb_status_message((int32_t)want));
    }
}
#define EXPECT(call, want) expect_status((call), (want), #call, __LINE__)

static void expect_same(const void *a, const void *b, size_t n, const char *what, int line) {
    checks++;
    if (memcmp(a, b, n) != 0) {
        failures++;
        printf("FAILED line %d: %s changed after a failed call\n", line, what);
    }
}
#define UNCHANGED(buf, copy, n) expect_same((buf), (copy), (n), #buf, __LINE__)

static void expect_true(int ok, const char *what, int line) {
    checks++;
    if (!ok) {
        failures++;
        printf("FAILED line %d: %s\n", line, what);
    }
}
#define EXPECT_TRUE(cond) expect_true((cond), #cond, __LINE__)

static int32_t grad_ok(const double *x, size_t d, double *g, void *user) {
    (void)user;
    for (size_t i = 0; i < d; i++) g[i] = x[i];
    return 0;
}
static int32_t grad_nan(const double *x, size_t d, double *g, void *user) {
    (void)x;
    (void)user;
    for (size_t i = 0; i < d; i++) g[i] = NAN;
    return 0;
}
static int32_t grad_fails(const double *x, size_t d, double *g, void *user) {
    (void)x;
    (void)d;
    (void)g;
    (void)user;
    return 7;
}

enum { M = 40, D = 2 };
#define SENTINEL_BYTE 0xA5

int main(void) {
    /* A valid model to break things against. */
    double data[M * D];
    for (int j = 0; j < M; j++) {
        data[j * D] = cos(0.157 * j);
        data[j * D + 1] = sin(0.157 * j) + 0.01 * (j % 3);
    }
    SbLayoutSizes sizes;
    SbLayout layout;
    uint32_t nb_off[2], nb[D], tg_off[2], tg[D];
    EXPECT(sb_layout_single_head_sizes(D, &sizes), SB_OK);
    EXPECT(sb_layout_single_head(D, &sizes, nb_off, nb, tg_off, tg, &layout), SB_OK);
    size_t image_len = 0;
    EXPECT(sb_image_len_f64(&layout, M, 0, 0, &image_len), SB_OK);
    const size_t fit_work_len = sb_fit_workspace_len(M);
    double *fit_work = malloc(fit_work_len * sizeof *fit_work);
    /* Room for the image plus 16 bytes, so the image can also be placed at a misaligned offset. */
    uint8_t *image = aligned_alloc(SB_IMAGE_ALIGN, (image_len + 2 * SB_IMAGE_ALIGN) / 16 * 16);
    uint8_t *copy = malloc(image_len + 32);
    if (!fit_work || !image || !copy) return 100;
    SbFitConfig cfg = {.eps = 0.05, .beta = 0.0, .variable_bandwidth = 0, .tol = 0.0, .max_iter = 0};
    SbFitReport report;
    EXPECT(sb_fit_model_f64(data, M, D, NULL, &layout, &cfg, image, image_len, fit_work,
                            fit_work_len, &report),
           SB_OK);

    /* ---- fitting: every failure leaves the image buffer and the report alone ---- */
    memset(image + image_len, SENTINEL_BYTE, 16);
    uint8_t *scratch = aligned_alloc(SB_IMAGE_ALIGN, (image_len + 2 * SB_IMAGE_ALIGN) / 16 * 16);
    if (!scratch) return 100;
    memset(scratch, SENTINEL_BYTE, image_len + 16);
    memcpy(copy, scratch, image_len + 16);
    SbFitReport rep_sentinel, rep;
    memset(&rep_sentinel, SENTINEL_BYTE, sizeof rep_sentinel);
    memcpy(&rep, &rep_sentinel, sizeof rep);
#define FIT(data_, m_, d_, layout_, cfg_, img_, len_, work_, wlen_) \
    sb_fit_model_f64((data_), (m_), (d_), NULL, (layout_), (cfg_), (img_), (len_), (work_), (wlen_), &rep)
    EXPECT(FIT(NULL, M, D, &layout, &cfg, scratch, image_len, fit_work, fit_work_len), SB_NULL_POINTER);
    EXPECT(FIT(data, M, D, NULL, &cfg, scratch, image_len, fit_work, fit_work_len), SB_NULL_POINTER);
    EXPECT(FIT(data, M, D, &layout, NULL, scratch, image_len, fit_work, fit_work_len), SB_NULL_POINTER);
    EXPECT(FIT(data, M, D, &layout, &cfg, NULL, image_len, fit_work, fit_work_len), SB_NULL_POINTER);
    EXPECT(FIT(data, M, D, &layout, &cfg, scratch, image_len, NULL, fit_work_len), SB_NULL_POINTER);
    EXPECT(FIT(data, 0, D, &layout, &cfg, scratch, image_len, fit_work, fit_work_len), SB_EMPTY_DATA);
    EXPECT(FIT(data, M, 0, &layout, &cfg, scratch, image_len, fit_work, fit_work_len), SB_ZERO_DIMENSION);
    EXPECT(FIT(data, SIZE_MAX, D, &layout, &cfg, scratch, image_len, fit_work, fit_work_len),
           SB_INVALID_ARGUMENT);
    EXPECT(FIT(data, M, D, &layout, &cfg, scratch, image_len - 1, fit_work, fit_work_len),
           SB_BUFFER_TOO_SMALL);
    EXPECT(FIT(data, M, D, &layout, &cfg, scratch + 1, image_len, fit_work, fit_work_len),
           SB_IMAGE_MISALIGNED);
    EXPECT(FIT(data, M, D, &layout, &cfg, scratch, image_len, fit_work, fit_work_len - 1),
           SB_BUFFER_TOO_SMALL);
    SbFitConfig bad_cfg = cfg;
    bad_cfg.eps = 0.0;
    EXPECT(FIT(data, M, D, &layout, &bad_cfg, scratch, image_len, fit_work, fit_work_len),
           SB_INVALID_EPSILON);
    bad_cfg = cfg;
    bad_cfg.tol = NAN;
    EXPECT(FIT(data, M, D, &layout, &bad_cfg, scratch, image_len, fit_work, fit_work_len),
           SB_INVALID_TOLERANCE);
    double saved = data[5];
    data[5] = NAN;
    EXPECT(FIT(data, M, D, &layout, &cfg, scratch, image_len, fit_work, fit_work_len), SB_NON_FINITE_DATA);
    data[5] = saved;
    /* The image overlapping the training data. */
    EXPECT(FIT(data, M, D, &layout, &cfg, (uint8_t *)data, sizeof data, fit_work, fit_work_len),
           SB_OVERLAPPING_BUFFERS);
    UNCHANGED(scratch, copy, image_len + 16);
    UNCHANGED(&rep, &rep_sentinel, sizeof rep);
#undef FIT

    /* ---- opening images ---- */
    SbModel model, model_sentinel;
    memset(&model_sentinel, SENTINEL_BYTE, sizeof model_sentinel);
    memcpy(&model, &model_sentinel, sizeof model);
    EXPECT(sb_model_open_f64(NULL, image_len, &model), SB_NULL_POINTER);
    EXPECT(sb_model_open_f64(image, image_len, NULL), SB_NULL_POINTER);
    EXPECT(sb_model_open_f64(image, 0, &model), SB_IMAGE_TRUNCATED);
    EXPECT(sb_model_open_f64(image, image_len - 16, &model), SB_IMAGE_TRUNCATED);
    EXPECT(sb_model_open_f64(image, SIZE_MAX, &model), SB_INVALID_ARGUMENT);
    EXPECT(sb_model_open_f32(image, image_len, &model), SB_IMAGE_WRONG_FLOAT_KIND);
    memcpy(scratch + 1, image, image_len); /* the same bytes, 1 byte off alignment */
    EXPECT(sb_model_open_f64(scratch + 1, image_len, &model), SB_IMAGE_MISALIGNED);
    memcpy(scratch, image, image_len);
    scratch[image_len / 2] ^= 0x01; /* one flipped bit in the data */
    EXPECT(sb_model_open_f64(scratch, image_len, &model), SB_IMAGE_CHECKSUM);
    memcpy(scratch, image, image_len);
    scratch[0] = 'X';
    EXPECT(sb_model_open_f64(scratch, image_len, &model), SB_IMAGE_BAD_MAGIC);
    memset(scratch, 0, image_len);
    EXPECT(sb_model_open_f64(scratch, image_len, &model), SB_IMAGE_BAD_MAGIC);
    UNCHANGED(&model, &model_sentinel, sizeof model);
    EXPECT(sb_model_open_f64(image, image_len, &model), SB_OK);

    SbWorkspaceLens lens;
    EXPECT(sb_workspace_lens(&model, &lens), SB_OK);
    EXPECT(sb_workspace_lens(NULL, &lens), SB_NULL_POINTER);
    EXPECT(sb_workspace_lens(&model, NULL), SB_NULL_POINTER);
    SbModelInfo info;
    EXPECT(sb_model_info(&model, &info), SB_OK);
    SbHeadInfo head;
    EXPECT(sb_head_info(&model, 1, &head), SB_INVALID_INDEX);
    EXPECT(sb_head_info(&model, SIZE_MAX, &head), SB_INVALID_INDEX);
    /* A handle whose image changed after opening is refused (its checksum field no longer
     * matches the handle). */
    SbModel forged = model;
    forged.checksum ^= 1;
    EXPECT(sb_model_info(&forged, &info), SB_IMAGE_CHECKSUM);
    forged = model;
    forged.float_size = 4;
    EXPECT(sb_model_info(&forged, &info), SB_IMAGE_WRONG_FLOAT_KIND);

    /* ---- bridge queries ---- */
    size_t qlen = lens.query;
    double *qwork = malloc(qlen * sizeof *qwork);
    double w[M], w_sentinel[M], x[D] = {0.1, 0.2};
    if (!qwork) return 100;
    for (int j = 0; j < M; j++) w_sentinel[j] = -1234.5;
    memcpy(w, w_sentinel, sizeof w);
    EXPECT(sb_weights_f64(NULL, 0, x, D, w, M, qwork, qlen), SB_NULL_POINTER);
    EXPECT(sb_weights_f64(&model, 0, NULL, D, w, M, qwork, qlen), SB_NULL_POINTER);
    EXPECT(sb_weights_f64(&model, 0, x, D, NULL, M, qwork, qlen), SB_NULL_POINTER);
    EXPECT(sb_weights_f64(&model, 0, x, D, w, M, NULL, qlen), SB_NULL_POINTER);
    EXPECT(sb_weights_f64(&model, 0, x, D, w, M, qwork, 0), SB_BUFFER_TOO_SMALL);
    EXPECT(sb_weights_f64(&model, 0, x, D, w, M - 1, qwork, qlen), SB_LENGTH_MISMATCH);
    EXPECT(sb_weights_f64(&model, 0, x, 0, w, M, qwork, qlen), SB_LENGTH_MISMATCH);
    EXPECT(sb_weights_f64(&model, 0, x, SIZE_MAX, w, M, qwork, qlen), SB_INVALID_ARGUMENT);
    EXPECT(sb_weights_f64(&model, 1, x, D, w, M, qwork, qlen), SB_INVALID_INDEX);
    double nan_x[D] = {NAN, 0.0};
    EXPECT(sb_weights_f64(&model, 0, nan_x, D, w, M, qwork, qlen), SB_NON_FINITE_STATE);
    double inf_x[D] = {INFINITY, 0.0};
    EXPECT(sb_weights_f64(&model, 0, inf_x, D, w, M, qwork, qlen), SB_NON_FINITE_STATE);
    /* A double pointer one byte off its alignment (e.g. from a packed record). */
    unsigned char raw[sizeof(double) * (D + 1)];
    memcpy(raw + 1, x, sizeof x);
    EXPECT(sb_weights_f64(&model, 0, (const double *)(const void *)(raw + 1), D, w, M, qwork, qlen),
           SB_MISALIGNED_POINTER);
    /* Output overlapping the work space. */
    EXPECT(sb_weights_f64(&model, 0, x, D, qwork, M, qwork, qlen), SB_OVERLAPPING_BUFFERS);
    UNCHANGED(w, w_sentinel, sizeof w);
    EXPECT(sb_weights_f64(&model, 0, x, D, w, M, qwork, qlen), SB_OK);

    /* ---- random streams ---- */
    SbRng rng, rng_sentinel;
    EXPECT(sb_rng_seed(1, 2, NULL), SB_NULL_POINTER);
    EXPECT(sb_rng_seed(1, 2, &rng), SB_OK);
    memcpy(&rng_sentinel, &rng, sizeof rng);
    double normals[4];
    EXPECT(sb_rng_normals(NULL, normals, 4), SB_NULL_POINTER);
    EXPECT(sb_rng_normals(&rng, NULL, 4), SB_NULL_POINTER);
    EXPECT(sb_rng_normals(&rng, normals, SIZE_MAX), SB_COUNT_TOO_LARGE);
    UNCHANGED(&rng, &rng_sentinel, sizeof rng);

    /* ---- the closure call: condition coordinate 0, sample coordinate 1 ---- */
    size_t clen = lens.closure;
    double *cwork = malloc(clen * sizeof *cwork);
    if (!cwork) return 100;
    size_t zc[1] = {0};
    double zs[1] = {0.5}, psi[1] = {0.0}, psi_sentinel[1] = {0.0};
    SbClosureConfig ccfg = {.sweeps = 3, .init = SB_INIT_WARM, .scheme = SB_SCHEME_ISOTROPIC,
                            .noise = SB_NOISE_GLOBAL};
    EXPECT(sb_closure_f64(NULL, &ccfg, zc, 1, zs, psi, 1, &rng, cwork, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, NULL, zc, 1, zs, psi, 1, &rng, cwork, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, NULL, 1, zs, psi, 1, &rng, cwork, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, NULL, psi, 1, &rng, cwork, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, NULL, 1, &rng, cwork, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, 1, NULL, cwork, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, 1, &rng, NULL, clen), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, 1, &rng, cwork, clen - 1), SB_BUFFER_TOO_SMALL);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, 2, &rng, cwork, clen), SB_LENGTH_MISMATCH);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, SIZE_MAX, &rng, cwork, clen), SB_INVALID_ARGUMENT);
    size_t bad_zc[1] = {5};
    EXPECT(sb_closure_f64(&model, &ccfg, bad_zc, 1, zs, psi, 1, &rng, cwork, clen), SB_INVALID_INDEX);
    double nan_z[1] = {NAN};
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, nan_z, psi, 1, &rng, cwork, clen), SB_NON_FINITE_STATE);
    double nan_psi[1] = {NAN};
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, nan_psi, 1, &rng, cwork, clen), SB_NON_FINITE_STATE);
    EXPECT_TRUE(isnan(nan_psi[0]));
    SbClosureConfig bad_ccfg = ccfg;
    bad_ccfg.sweeps = 0;
    EXPECT(sb_closure_f64(&model, &bad_ccfg, zc, 1, zs, psi, 1, &rng, cwork, clen), SB_ZERO_ITERATIONS);
    bad_ccfg = ccfg;
    bad_ccfg.init = 9;
    EXPECT(sb_closure_f64(&model, &bad_ccfg, zc, 1, zs, psi, 1, &rng, cwork, clen), SB_INVALID_ARGUMENT);
    bad_ccfg = ccfg;
    bad_ccfg.scheme = SB_SCHEME_BAYESIAN;
    EXPECT(sb_closure_f64(&model, &bad_ccfg, zc, 1, zs, psi, 1, &rng, cwork, clen), SB_INVALID_ARGUMENT);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, cwork, 1, &rng, cwork, clen), SB_OVERLAPPING_BUFFERS);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, 1, &rng, (double *)(void *)&rng, 6),
           SB_OVERLAPPING_BUFFERS);
    UNCHANGED(psi, psi_sentinel, sizeof psi);
    UNCHANGED(&rng, &rng_sentinel, sizeof rng);
    EXPECT(sb_closure_f64(&model, &ccfg, zc, 1, zs, psi, 1, &rng, cwork, clen), SB_OK);
    EXPECT_TRUE(isfinite(psi[0]) && memcmp(&rng, &rng_sentinel, sizeof rng) != 0);

    /* ---- chains: the Bayesian scheme's callbacks ---- */
    size_t chlen = lens.chain;
    double *chwork = malloc(chlen * sizeof *chwork);
    if (!chwork) return 100;
    double xs[D] = {1.0, 0.0}, half[D] = {-9.0, -9.0}, xs0[D], half0[D];
    memcpy(xs0, xs, sizeof xs);
    memcpy(half0, half, sizeof half);
    memcpy(&rng_sentinel, &rng, sizeof rng);
    SbStepConfig bayes = {.scheme = SB_SCHEME_BAYESIAN, .dtau = 0.0, .noise = SB_NOISE_GLOBAL};
    EXPECT(sb_chain_f64(&model, &bayes, NULL, NULL, NULL, NULL, 0, xs, half, D, 3, NULL, NULL, &rng,
                        chwork, chlen),
           SB_NULL_POINTER);
    EXPECT(sb_chain_f64(&model, &bayes, grad_nan, NULL, NULL, NULL, 0, xs, half, D, 3, NULL, NULL,
                        &rng, chwork, chlen),
           SB_NON_FINITE_GRADIENT);
    EXPECT(sb_chain_f64(&model, &bayes, grad_fails, NULL, NULL, NULL, 0, xs, half, D, 3, NULL, NULL,
                        &rng, chwork, chlen),
           SB_CALLBACK_FAILED);
    SbStepConfig bad_step = bayes;
    bad_step.scheme = 42;
    EXPECT(sb_chain_f64(&model, &bad_step, grad_ok, NULL, NULL, NULL, 0, xs, half, D, 3, NULL, NULL,
                        &rng, chwork, chlen),
           SB_INVALID_ARGUMENT);
    SbStepConfig small = {.scheme = SB_SCHEME_SMALL_STEP_ISOTROPIC, .dtau = 1.0, .noise = SB_NOISE_GLOBAL};
    EXPECT(sb_chain_f64(&model, &small, NULL, NULL, NULL, NULL, 0, xs, half, D, 3, NULL, NULL, &rng,
                        chwork, chlen),
           SB_INVALID_STEP_SIZE);
    double x3[3] = {1.0, 0.0, 0.0}, h3[3] = {0.0, 0.0, 0.0};
    EXPECT(sb_chain_f64(&model, &bayes, grad_ok, NULL, NULL, NULL, 0, x3, h3, 3, 3, NULL, NULL,
                        &rng, chwork, chlen),
           SB_LENGTH_MISMATCH);
    EXPECT(sb_chain_f64(&model, &bayes, grad_ok, NULL, NULL, NULL, 0, xs, half, D, SIZE_MAX, NULL,
                        NULL, &rng, chwork, chlen),
           SB_COUNT_TOO_LARGE);
    double nan_start[D] = {NAN, 0.0};
    EXPECT(sb_chain_f64(&model, &bayes, grad_ok, NULL, NULL, NULL, 0, nan_start, half, D, 3, NULL,
                        NULL, &rng, chwork, chlen),
           SB_NON_FINITE_STATE);
    UNCHANGED(xs, xs0, sizeof xs);
    UNCHANGED(half, half0, sizeof half);
    UNCHANGED(&rng, &rng_sentinel, sizeof rng);
    EXPECT(sb_chain_f64(&model, &bayes, grad_ok, NULL, NULL, NULL, 0, xs, half, D, 3, NULL, NULL,
                        &rng, chwork, chlen),
           SB_OK);

    /* ---- layouts: sizes and builders ---- */
    SbLayoutSizes s;
    EXPECT(sb_layout_closure_sizes(8, 2, 1, NULL), SB_NULL_POINTER);
    EXPECT(sb_layout_closure_sizes(8, 2, 1, &s), SB_OK);
    uint32_t a[9], b[48], c[9], dd[8];
    SbLayout out;
    EXPECT(sb_layout_closure(8, 2, 1, NULL, a, b, c, dd, &out), SB_NULL_POINTER);
    EXPECT(sb_layout_closure(8, 2, 1, &s, a, NULL, c, dd, &out), SB_NULL_POINTER);
    EXPECT(sb_layout_closure(8, 2, 1, &s, a, b, c, dd, NULL), SB_NULL_POINTER);
    SbLayoutSizes small_room = s;
    small_room.nb_len -= 1;
    EXPECT(sb_layout_closure(8, 2, 1, &small_room, a, b, c, dd, &out), SB_BUFFER_TOO_SMALL);
    EXPECT(sb_layout_closure(2, 2, 1, &s, a, b, c, dd, &out), SB_INVALID_LAYOUT);
    EXPECT(sb_layout_closure(8, 2, 1, &s, a, b, a, dd, &out), SB_OVERLAPPING_BUFFERS);
    EXPECT(sb_layout_closure(8, 2, 1, &s, a, b, c, dd, &out), SB_OK);

    /* ---- messages ---- */
    for (int32_t code = 0; code <= 105; code++) {
        const char *msg = sb_status_message(code);
        EXPECT_TRUE(msg != NULL && msg[0] != '\0');
    }
    EXPECT_TRUE(strcmp(sb_status_message(-1), "unknown status code") == 0);
    EXPECT_TRUE(strcmp(sb_status_message(32), "unknown status code") == 0);
    EXPECT_TRUE(strcmp(sb_status_message(113), "unknown status code") == 0);
    EXPECT_TRUE(strcmp(sb_version(), SBRIDGE_VERSION) == 0);

    free(fit_work);
    free(image);
    free(copy);
    free(scratch);
    free(qwork);
    free(cwork);
    free(chwork);
    printf("bad_input: %d checks, %d failed\n", checks, failures);
    return failures > 98 ? 98 : failures; /* 99 is valgrind's error exit code */
}
