/*
 * closure_restart: checkpoint and restart of a model that calls the closure, through the C ABI.
 *
 *   closure_restart IMAGE NCOL STEPS OUT               start from the initial state
 *   closure_restart IMAGE NCOL STEPS OUT CHECKPOINT    continue from a checkpoint
 *
 * The model is the toy model of closure_columns.f90, written out in C: NCOL columns, each a
 * one-scale Lorenz-96 ring of K = 8 variables z_k, z <- z + (G(z) + psi) dt (dt = 5e-3, F = 20),
 * psi from one sb_closure_batch_f64 call per step over all columns (n_c = 10 sweeps, warm
 * start, column g on the random stream (seed 2024, stream g)). IMAGE is the fitted model
 * (c_examples/lorenz96_closure.c writes one).
 *
 * OUT receives the state at step STEPS in the state file format of closure_columns.f90:
 *
 *     uint64 ncol, K, step, seed, checksum    (checksum: SbModel.checksum of the image)
 *     double z[ncol][K], psi[ncol][K]
 *     SbRng  rng[ncol]                        (48 bytes each)
 *
 * and that file is also the checkpoint: a run to step n writes one, a new process given it as
 * CHECKPOINT continues from step n to STEPS, and its OUT is byte for byte the OUT of one
 * uninterrupted run to STEPS (tests/examples_parallel.rs checks it, and that the Fortran
 * closure_restart.f90 writes and continues the same files).
 *
 * What a restart must save, and what it must not:
 *   - every column's SbRng, all 48 bytes (the four state words and the cached Box-Muller
 *     deviate with its flag): a stream reseeded at the restart would draw different noise;
 *   - every column's psi: with SB_INIT_WARM the next closure call starts from it;
 *   - the host model's own state (here z) and the step counter, as any restart does;
 *   - not the model: the library keeps no state between calls, so the model is simply reloaded
 *     from its image file; the checkpoint records the image checksum so that a restart with
 *     another image is refused instead of silently continuing with a different closure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbridge.h"

enum { K = 8, D = 2 * K };
static const double F = 20.0, DT = 5e-3;
static const uint64_t SEED = 2024;
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

/* The columns' state: what the state file (and so the checkpoint) holds. */
typedef struct {
    size_t ncol, step;
    double *z;   /* z[c * K + k] */
    double *psi; /* psi[c * K + k] */
    SbRng *rng;  /* rng[c] */
} State;

static int alloc_state(State *s, size_t ncol) {
    s->ncol = ncol;
    s->step = 0;
    s->z = malloc(ncol * K * sizeof *s->z);
    s->psi = malloc(ncol * K * sizeof *s->psi);
    s->rng = malloc(ncol * sizeof *s->rng);
    return s->z && s->psi && s->rng;
}

static void free_state(State *s) {
    free(s->z);
    free(s->psi);
    free(s->rng);
}

/* The whole file, in a 16-byte aligned buffer (SB_IMAGE_ALIGN) as sb_model_open_f64 needs. */
static uint8_t *read_image(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    uint8_t *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
        size_t rounded = ((size_t)n + SB_IMAGE_ALIGN - 1) / SB_IMAGE_ALIGN * SB_IMAGE_ALIGN;
        buf = aligned_alloc(SB_IMAGE_ALIGN, rounded);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) fprintf(stderr, "%s: cannot read the model image\n", path);
    *len = buf ? (size_t)n : 0;
    return buf;
}

/* Initial state of global column g: z_k = ((37 (K g + k) + 11) mod 101) / 5 - 5, psi = 0. */
static void initial_state(State *s) {
    for (size_t c = 0; c < s->ncol; c++)
        for (size_t k = 0; k < K; k++) {
            s->z[c * K + k] = (double)((37 * (K * c + k) + 11) % 101) / 5.0 - 5.0;
            s->psi[c * K + k] = 0.0;
        }
}

/* One Euler step of one column: z <- z + (G(z) + psi) dt. */
static void euler_step(double *z, const double *psi) {
    double g[K];
    for (int k = 0; k < K; k++) {
        int km1 = (k + K - 1) % K, km2 = (k + K - 2) % K, kp1 = (k + 1) % K;
        g[k] = -z[km1] * (z[km2] - z[kp1]) - z[k] + F;
    }
    for (int k = 0; k < K; k++) z[k] = z[k] + (g[k] + psi[k]) * DT;
}

static int write_state(const char *path, const State *s, uint64_t checksum) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 0;
    }
    const uint64_t header[5] = {s->ncol, K, s->step, SEED, checksum};
    int ok = fwrite(header, sizeof header[0], 5, f) == 5 &&
             fwrite(s->z, sizeof *s->z, s->ncol * K, f) == s->ncol * K &&
             fwrite(s->psi, sizeof *s->psi, s->ncol * K, f) == s->ncol * K &&
             fwrite(s->rng, sizeof *s->rng, s->ncol, f) == s->ncol;
    ok = (fclose(f) == 0) && ok;
    if (!ok) fprintf(stderr, "%s: cannot write the state file\n", path);
    return ok;
}

/* Reads a checkpoint into s (allocated here); refuses one of another model or column count. */
static int read_state(const char *path, State *s, size_t ncol, uint64_t checksum) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 0;
    }
    uint64_t header[5];
    int ok = fread(header, sizeof header[0], 5, f) == 5;
    if (ok && (header[0] != ncol || header[1] != K || header[3] != SEED)) {
        fprintf(stderr, "%s: not a checkpoint of %zu columns of this model\n", path, ncol);
        ok = 0;
    } else if (ok && header[4] != checksum) {
        fprintf(stderr, "%s: written with another model image\n", path);
        ok = 0;
    } else if (ok) {
        ok = alloc_state(s, ncol) && fread(s->z, sizeof *s->z, ncol * K, f) == ncol * K &&
             fread(s->psi, sizeof *s->psi, ncol * K, f) == ncol * K &&
             fread(s->rng, sizeof *s->rng, ncol, f) == ncol && fgetc(f) == EOF;
        if (!ok) fprintf(stderr, "%s: truncated or overlong checkpoint\n", path);
        s->step = (size_t)header[2];
    }
    fclose(f);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: closure_restart IMAGE NCOL STEPS OUT [CHECKPOINT]\n");
        return 2;
    }
    const size_t ncol = (size_t)strtoul(argv[2], NULL, 10);
    const size_t steps = (size_t)strtoul(argv[3], NULL, 10);
    if (ncol == 0 || ncol > 1000000) {
        fprintf(stderr, "closure_restart: need 1 <= NCOL <= 1000000\n");
        return 2;
    }
    int ok = 0;
    uint8_t *image = NULL;
    double *work = NULL;
    State s = {0};

    /* The model: reloaded from its image file at every start, restart or not. */
    size_t image_len = 0;
    image = read_image(argv[1], &image_len);
    if (!image) goto fail;
    SbModel model;
    SbModelInfo info;
    SbWorkspaceLens lens;
    CHECK(sb_model_open_f64(image, image_len, &model));
    CHECK(sb_model_info(&model, &info));
    CHECK(sb_workspace_lens(&model, &lens));
    if (info.d != D) {
        fprintf(stderr, "closure_restart: expected a model of d = %d\n", D);
        goto fail;
    }
    work = malloc(lens.closure * sizeof *work);
    if (!work) goto fail;

    /* The state: from the checkpoint, or the initial state with freshly seeded streams. */
    if (argc == 6) {
        if (!read_state(argv[5], &s, ncol, model.checksum)) goto fail;
        if (s.step > steps) {
            fprintf(stderr, "closure_restart: the checkpoint is at step %zu > STEPS\n", s.step);
            goto fail;
        }
    } else {
        if (!alloc_state(&s, ncol)) goto fail;
        initial_state(&s);
        for (size_t c = 0; c < ncol; c++) CHECK(sb_rng_seed(SEED, c, &s.rng[c]));
    }
    const size_t first = s.step;

    size_t z_coords[K];
    for (size_t k = 0; k < K; k++) z_coords[k] = k;
    const SbClosureConfig cfg = {.sweeps = SWEEPS, .init = SB_INIT_WARM,
                                 .scheme = SB_SCHEME_ISOTROPIC, .noise = SB_NOISE_GLOBAL};
    for (; s.step < steps; s.step++) {
        size_t failed = 0;
        SbStatus st = sb_closure_batch_f64(&model, &cfg, z_coords, K, ncol, s.z, s.psi, K, s.rng,
                                           work, lens.closure, &failed);
        if (st != SB_OK) {
            fprintf(stderr, "closure_restart: column %zu failed at step %zu: %s\n", failed,
                    s.step + 1, sb_status_message((int32_t)st));
            goto fail;
        }
        for (size_t c = 0; c < ncol; c++) {
            euler_step(s.z + c * K, s.psi + c * K);
            for (int k = 0; k < K; k++)
                if (!(fabs(s.z[c * K + k]) <= 1e3)) {
                    fprintf(stderr, "closure_restart: column %zu blew up\n", c);
                    goto fail;
                }
        }
    }
    if (!write_state(argv[4], &s, model.checksum)) goto fail;
    printf("closure_restart: %zu columns, steps %zu..%zu%s\n", ncol, first, steps,
           argc == 6 ? " (restarted)" : "");
    ok = 1;

fail:
    free_state(&s);
    free(work);
    free(image);
    if (!ok) fprintf(stderr, "closure_restart: FAILED\n");
    return ok ? 0 : 1;
}
