!> closure_openmp: the closure call in an OpenMP-parallel loop over columns, the way a climate
!> model's physics calls a column parametrisation.
!>
!>   OMP_NUM_THREADS=T closure_openmp IMAGE NCOL STEPS OUT
!>
!> IMAGE is a fitted closure model (c_examples/lorenz96_closure.c writes one; fit once, ship the
!> image, load it in the host model). NCOL columns of the toy model of closure_columns.f90 run
!> STEPS time steps; every step advances all columns in an `!$omp parallel do`, one sb_closure
!> call per column. OUT receives the final state file (closure_columns.f90 describes it).
!>
!> What makes the result independent of the number of threads (OUT is the same file, byte for
!> byte, for any T, and tests/examples_parallel.rs checks it for T = 1, 2, 3):
!> * one random stream per column, seeded by the column's global index, stored with the column;
!> * one work array per thread: sb_closure writes its work array, so two threads must never share
!>   one (a shared work array is a data race that corrupts psi);
!> * the model (image and handle), cfg and z_coords are only read, and can be shared;
!> * the column's own state (z, psi, rng) is written only by the thread advancing that column.
!>
!> Built with gfortran -fopenmp. Without -fopenmp the `!$` lines are comments and the same
!> program runs serially.
program closure_openmp
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   !$ use omp_lib, only: omp_get_max_threads, omp_get_thread_num
   use sbridge
   use closure_columns
   implicit none

   type(sbridge_model) :: model
   type(sb_model_info_t) :: info
   type(sb_workspace_lens_t) :: lens
   type(sb_closure_config_t) :: cfg
   character(len=4096) :: image_path, arg, out_path
   integer(c_size_t) :: z_coords(nk)
   real(c_double), allocatable :: z(:, :), psi(:, :), work(:, :)
   type(sb_rng_t), allocatable :: rngs(:)
   integer(c_int), allocatable :: status(:)
   integer :: ncol, steps, nthreads, c, n, t, ios

   if (command_argument_count() /= 4) then
      write (error_unit, '(a)') 'usage: closure_openmp IMAGE NCOL STEPS OUT'
      error stop 2
   end if
   call get_command_argument(1, image_path)
   call get_command_argument(2, arg)
   read (arg, *, iostat=ios) ncol
   if (ios /= 0 .or. ncol < 1) error stop 'closure_openmp: NCOL must be a positive integer'
   call get_command_argument(3, arg)
   read (arg, *, iostat=ios) steps
   if (ios /= 0 .or. steps < 0) error stop 'closure_openmp: STEPS must be an integer >= 0'
   call get_command_argument(4, out_path)

   ! Once, before any thread starts: load and check the model, size the work space.
   call sb_check(sb_load(model, trim(image_path)), 'loading '//trim(image_path))
   call sb_check(sb_info(model, info), 'model info')
   call sb_check(sb_workspace(model, lens), 'workspace lengths')
   if (info%float_size /= 8 .or. info%d /= 2 * nk) then
      write (error_unit, '(a, i0)') 'closure_openmp: expected a double model of d = ', 2 * nk
      error stop 1
   end if
   cfg = closure_config()
   z_coords = z_coordinates()

   nthreads = 1
   !$ nthreads = omp_get_max_threads()
   ! The work arrays: one column per thread, indexed by omp_get_thread_num().
   allocate (z(nk, ncol), psi(nk, ncol), rngs(ncol), status(ncol))
   allocate (work(lens%closure, 0:nthreads - 1))
   call initial_state(0, z, psi)
   do c = 1, ncol
      ! The column's stream is keyed by its global 0-based index, not by the thread.
      call sb_check(sb_rng_seed(seed, int(c - 1, c_int64_t), rngs(c)), 'seeding')
   end do
   status = SB_OK

   ! The time loop. z(:, c) and psi(:, c) are contiguous columns and are passed without copies.
   do n = 1, steps
      !$omp parallel do default(none) schedule(static) private(c, t) &
      !$omp shared(model, cfg, z_coords, z, psi, rngs, work, status, ncol)
      do c = 1, ncol
         t = 0
         !$ t = omp_get_thread_num()
         if (status(c) == SB_OK) then
            status(c) = sb_closure(model, cfg, z_coords, z(:, c), psi(:, c), rngs(c), work(:, t))
            if (status(c) == SB_OK) call euler_step(z(:, c), psi(:, c))
         end if
      end do
      !$omp end parallel do
      ! The library never stops a program; a failed column is reported here, outside the threads.
      if (any(status /= SB_OK)) then
         c = findloc(status /= SB_OK, .true., dim=1)
         write (error_unit, '(a, i0, a, i0, a, a)') 'closure_openmp: column ', c - 1, &
            ' failed at step ', n, ': ', sb_message(status(c))
         error stop 1
      end if
      if (any(.not. (abs(z) <= 1.0e3_c_double))) error stop 'closure_openmp: the model blew up'
   end do

   if (.not. write_state(trim(out_path), model, steps, z, psi, rngs)) error stop 1
   write (*, '(a, i0, a, i0, a, i0, a, f0.3, a, f0.3)') 'closure_openmp: ', ncol, &
      ' columns, ', steps, ' steps on ', nthreads, ' threads; z mean ', sum(z) / size(z), &
      ', psi mean ', sum(psi) / size(psi)
   deallocate (z, psi, rngs, status, work)
   call sb_free(model)
end program closure_openmp
