/*
 * silent_errors: the mistakes a climate modeller makes with a closure library, from C, and the
 * status each one gets (run under valgrind by tests/c_abi.rs; its Fortran twin is
 * silent_errors.f90). Every one of these used to return SB_OK, hang, crash or give a status that
 * did not say what happened:
 *
 *   1. an RNG state that was never seeded (all zeros)          -> SB_RNG_UNSEEDED
 *   2. 1-based z_coords, or the psi block clamped instead of z  -> SB_UNCOVERED_COORDINATE
 *   3. a failed load keeps the model that was loaded before     -> old model still SB_OK
 *   4. a model never loaded, or freed                           -> SB_NO_MODEL
 *   5. a missing file, an empty file, a directory               -> SB_FILE_NOT_FOUND, ...
 *   6. sweeps = -1 (a negative count passed as size_t)          -> SB_COUNT_TOO_LARGE
 *   7. a value word overwritten after opening                   -> sb_model_verify says so
 *   8. z* = DBL_MAX with overflow traps on                      -> SB_OUT_OF_RANGE, no SIGFPE;
 *      z* = 1e6, far outside the data                           -> SB_OK, and the heads'
 *                                                                  effective sample size says so
 *
 * Usage: silent_errors DIR (a scratch directory for the model files). Prints one line per failed
 * expectation and exits with the number of failures (0 = all passed).
 */
#define _GNU_SOURCE /* feenableexcept */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void expect_true(int ok, const char *what, int line) {
    checks++;
    if (!ok) {
        failures++;
        printf("FAILED line %d: %s\n", line, what);
    }
}
#define EXPECT_TRUE(cond) expect_true((cond), #cond, __LINE__)

/* A closure model over two blocks of K coordinates: z = block 0 (coordinates 0..K-1, the
 * conditioning block), psi = block 1 (K..2K-1, the heads' targets). */
enum { K = 4, D = 2 * K, M = 120, NZ = K, NPSI = K };

static int write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = n ? fwrite(bytes, 1, n, f) : 0;
    return fclose(f) == 0 && w == n;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: silent_errors DIR\n");
        return 100;
    }
    const char *dir = argv[1];
    char path[4096];

    /* ---- a small closure model, fitted here and saved as a file ---- */
    double data[M * D];
    for (int j = 0; j < M; j++) {
        for (int c = 0; c < K; c++) {
            double z = sin(0.37 * j + 1.3 * c);
            data[j * D + c] = z;
            data[j * D + K + c] = 0.5 * z + 0.2 * cos(0.91 * j + c);
        }
    }
    SbLayoutSizes sizes;
    SbLayout layout;
    EXPECT(sb_layout_closure_sizes(K, 2, 1, &sizes), SB_OK);
    uint32_t nb_off[K + 1], tg_off[K + 1], nb[64], tg[64];
    if (sizes.nb_len > 64 || sizes.tg_len > 64 || sizes.n_heads > K) return 100;
    EXPECT(sb_layout_closure(K, 2, 1, &sizes, nb_off, nb, tg_off, tg, &layout), SB_OK);
    size_t image_len = 0;
    EXPECT(sb_image_len_f64(&layout, M, 0, 0, &image_len), SB_OK);
    size_t fit_work_len = sb_fit_workspace_len(M);
    double *fit_work = malloc(fit_work_len * sizeof *fit_work);
    uint8_t *image = aligned_alloc(SB_IMAGE_ALIGN, (image_len + 15) / 16 * 16);
    if (!fit_work || !image) return 100;
    SbFitConfig cfg = {.eps = 0.1};
    SbFitReport report;
    EXPECT(sb_fit_model_f64(data, M, D, NULL, &layout, &cfg, image, image_len, fit_work,
                            fit_work_len, &report),
           SB_OK);
    free(fit_work);
    snprintf(path, sizeof path, "%s/model.img", dir);
    EXPECT_TRUE(write_file(path, image, image_len));

    SbModel model = {0};
    EXPECT(sb_model_load(path, &model), SB_OK);
    EXPECT_TRUE(model.owned == 1 && model.float_size == 8);
    SbWorkspaceLens lens;
    EXPECT(sb_workspace_lens(&model, &lens), SB_OK);
    double *work = malloc(lens.closure * sizeof *work);
    if (!work) return 100;
    SbClosureConfig ccfg = {.sweeps = 20, .init = SB_INIT_WARM};
    size_t z_coords[NZ], one_based[NZ], psi_block[NZ];
    for (size_t c = 0; c < NZ; c++) {
        z_coords[c] = c;
        one_based[c] = c + 1;
        psi_block[c] = K + c;
    }
    double z_star[NZ] = {0.1, -0.2, 0.3, 0.0}, psi[NPSI] = {0}, psi_copy[NPSI];
    SbRng rng, rng_copy;
    EXPECT(sb_rng_seed(7, 0, &rng), SB_OK);
    EXPECT(sb_closure_f64(&model, &ccfg, z_coords, NZ, z_star, psi, NPSI, &rng, work, lens.closure),
           SB_OK);

    /* ---- 1. an RNG that was never seeded ---- */
    SbRng zero = {{0, 0, 0, 0}, 0, 0};
    memcpy(psi_copy, psi, sizeof psi);
    EXPECT(sb_closure_f64(&model, &ccfg, z_coords, NZ, z_star, psi, NPSI, &zero, work,
                          lens.closure),
           SB_RNG_UNSEEDED);
    EXPECT_TRUE(memcmp(psi, psi_copy, sizeof psi) == 0);
    double normals[4] = {1, 2, 3, 4};
    EXPECT(sb_rng_normals(&zero, normals, 4), SB_RNG_UNSEEDED);
    EXPECT_TRUE(normals[0] == 1 && normals[3] == 4);
    SbRng corrupt = rng;
    corrupt.has_spare = 7;
    EXPECT(sb_rng_normals(&corrupt, normals, 4), SB_RNG_CORRUPT);

    /* ---- 2. wrong conditioning coordinates ---- */
    memcpy(&rng_copy, &rng, sizeof rng);
    EXPECT(sb_closure_f64(&model, &ccfg, one_based, NZ, z_star, psi, NPSI, &rng, work,
                          lens.closure),
           SB_UNCOVERED_COORDINATE);
    EXPECT(sb_closure_f64(&model, &ccfg, psi_block, NZ, z_star, psi, NPSI, &rng, work,
                          lens.closure),
           SB_UNCOVERED_COORDINATE);
    EXPECT_TRUE(memcmp(psi, psi_copy, sizeof psi) == 0);
    EXPECT_TRUE(memcmp(&rng, &rng_copy, sizeof rng) == 0);

    /* ---- 3. and 5. a failed load keeps the old model; file statuses ---- */
    snprintf(path, sizeof path, "%s/not_a_model.img", dir);
    EXPECT_TRUE(write_file(path, "this is not a model image", 25));
    SbModel before = model;
    EXPECT(sb_model_load(path, &model), SB_IMAGE_TRUNCATED);
    EXPECT_TRUE(memcmp(&before, &model, sizeof model) == 0);
    snprintf(path, sizeof path, "%s/does_not_exist.img", dir);
    EXPECT(sb_model_load(path, &model), SB_FILE_NOT_FOUND);
    snprintf(path, sizeof path, "%s/empty.img", dir);
    EXPECT_TRUE(write_file(path, "", 0));
    EXPECT(sb_model_load(path, &model), SB_FILE_EMPTY);
    EXPECT(sb_model_load(dir, &model), SB_NOT_A_FILE);
    EXPECT(sb_model_load(NULL, &model), SB_NULL_POINTER);
    EXPECT(sb_closure_f64(&model, &ccfg, z_coords, NZ, z_star, psi, NPSI, &rng, work, lens.closure),
           SB_OK);

    /* ---- 4. a model never loaded, or freed ---- */
    SbModel never = {0};
    EXPECT(sb_closure_f64(&never, &ccfg, z_coords, NZ, z_star, psi, NPSI, &rng, work,
                          lens.closure),
           SB_NO_MODEL);
    EXPECT(sb_workspace_lens(&never, &lens), SB_NO_MODEL);
    SbModel second = {0};
    snprintf(path, sizeof path, "%s/model.img", dir);
    EXPECT(sb_model_load(path, &second), SB_OK);
    EXPECT(sb_model_free(&second), SB_OK);
    EXPECT_TRUE(second.image == NULL && second.owned == 0);
    EXPECT(sb_closure_f64(&second, &ccfg, z_coords, NZ, z_star, psi, NPSI, &rng, work,
                          lens.closure),
           SB_NO_MODEL);
    EXPECT(sb_model_free(&second), SB_OK); /* freeing the empty handle again is harmless */

    /* ---- 6. negative counts passed as size_t ---- */
    SbClosureConfig minus_one = ccfg;
    minus_one.sweeps = (size_t)-1;
    EXPECT(sb_closure_f64(&model, &minus_one, z_coords, NZ, z_star, psi, NPSI, &rng, work,
                          lens.closure),
           SB_COUNT_TOO_LARGE);
    EXPECT(sb_rng_normals(&rng, normals, (size_t)-1), SB_COUNT_TOO_LARGE);
    size_t failed = 99;
    EXPECT(sb_closure_batch_f64(&model, &ccfg, z_coords, NZ, (size_t)-1, z_star, psi, NPSI, &rng,
                                work, lens.closure, &failed),
           SB_COUNT_TOO_LARGE);

    /* ---- 7. bytes changed after opening ---- */
    SbModel in_memory;
    EXPECT(sb_model_open(image, image_len, &in_memory), SB_OK);
    EXPECT(sb_model_verify(&in_memory), SB_OK);
    image[image_len - 8] ^= 0x10; /* a value in the last section */
    EXPECT(sb_model_verify(&in_memory), SB_IMAGE_CHECKSUM);
    image[image_len - 8] ^= 0x10;
    EXPECT(sb_model_verify(&in_memory), SB_OK);
    EXPECT(sb_model_verify(&never), SB_NO_MODEL);

    /* ---- 8. values that would overflow, with overflow traps on ---- */
    feenableexcept(FE_OVERFLOW);
    double huge[NZ] = {DBL_MAX, 0, 0, 0}, big[NZ] = {1e200, 0, 0, 0};
    EXPECT(sb_closure_f64(&model, &ccfg, z_coords, NZ, huge, psi, NPSI, &rng, work, lens.closure),
           SB_OUT_OF_RANGE);
    EXPECT(sb_closure_f64(&model, &ccfg, z_coords, NZ, big, psi, NPSI, &rng, work, lens.closure),
           SB_OUT_OF_RANGE);
    double ess_in[K], ess_far[K];
    EXPECT(sb_closure_ess_f64(&model, z_coords, NZ, z_star, psi, NPSI, ess_in, sizes.n_heads, work,
                              lens.closure),
           SB_OK);
    double far[NZ] = {1e6, 1e6, 1e6, 1e6}, far_psi[NPSI];
    memcpy(far_psi, psi, sizeof psi);
    EXPECT(sb_closure_f64(&model, &ccfg, z_coords, NZ, far, far_psi, NPSI, &rng, work,
                          lens.closure),
           SB_OK);
    EXPECT(sb_closure_ess_f64(&model, z_coords, NZ, far, far_psi, NPSI, ess_far, sizes.n_heads,
                              work, lens.closure),
           SB_OK);
    double min_in = INFINITY, max_far = 0;
    for (size_t h = 0; h < sizes.n_heads; h++) {
        min_in = fmin(min_in, ess_in[h]);
        max_far = fmax(max_far, ess_far[h]);
    }
    printf("effective sample sizes: min %.2f inside the data, max %.4f at z* = 1e6 (M = %d)\n",
           min_in, max_far, M);
    EXPECT_TRUE(min_in > 5.0 && max_far < 1.01);
    fedisableexcept(FE_OVERFLOW);

    EXPECT(sb_model_free(&model), SB_OK);
    free(work);
    free(image);
    printf("silent_errors: %d checks, %d failed\n", checks, failures);
    return failures;
}
