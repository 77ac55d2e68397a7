/*
 * gomp_join.c: makes the boundaries of GCC's OpenMP parallel regions visible to a thread
 * checker (valgrind's helgrind). Link it into a race-check build only, never into production:
 *
 *   gfortran -fopenmp ... model.f90 gomp_join.o -Wl,--wrap=GOMP_parallel ...
 *   valgrind --tool=helgrind --suppressions=c_examples/race_check/helgrind.supp ./model ...
 *
 * Why. libgomp (GCC's OpenMP runtime) synchronises its threads with atomic instructions and
 * futexes, which helgrind cannot see (valgrind's manual says so and suggests rebuilding GCC with
 * --disable-linux-futex). Without help, every access after a parallel region looks like a race
 * with the accesses inside it, and real races drown in those reports.
 *
 * How. Every `!$omp parallel` / `#pragma omp parallel`, including a `parallel do` with a static
 * schedule, enters libgomp through GOMP_parallel; -Wl,--wrap=GOMP_parallel sends those calls
 * here. After each region returns, omp_pause_resource_all(omp_pause_hard) (OpenMP 5.0) makes
 * libgomp release its thread pool: it joins its threads with pthread_join, and the next region
 * starts new ones with pthread_create. Thread creation and join are synchronisation that
 * helgrind does see, so everything before a region happens-before the region, and the region
 * happens-before everything after it. What remains to suppress is inside libgomp itself (see
 * helgrind.supp).
 *
 * Limits. Synchronisation *inside* a region stays invisible: `!$omp barrier`, critical, atomic,
 * single, and loops that GCC compiles to other entry points (GOMP_parallel_loop_* for dynamic,
 * guided and runtime schedules). A model using those needs a libgomp built with
 * --disable-linux-futex. The example closure_openmp.f90 uses none of them.
 */
#include <omp.h>

void __real_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
    __real_GOMP_parallel(fn, data, num_threads, flags);
    omp_pause_resource_all(omp_pause_hard);
}
